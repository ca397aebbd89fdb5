"""Process-wide settings are made by explicit calls (infra.runtime), never by importing a module.

The launcher's call sets the Arrow pool's variable before pyarrow loads and filters Beam's
apitools note; a DoFn's `setup` is too late for the variable (pyarrow picked its pool when it
was imported), so the local runner's workers get it from the launcher and still switch
pyarrow's own pool and connect to a storage emulator in `setup`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from infra.runtime import ARROW_POOL, ARROW_POOL_VARIABLE
from tests.conftest import ROOT, local_pipeline
from tests.runtime_probe import WorkerSettingsFn
from transforms.base import ApplyStage

EMULATOR = "http://127.0.0.1:9"  # never contacted: only whether the variable is set matters


def run_python(code: str, **env: str) -> dict:
    """Run `code` in a fresh interpreter (this tree first on its path); the JSON it printed last."""
    base = {k: v for k, v in os.environ.items() if k not in (ARROW_POOL_VARIABLE, "STORAGE_EMULATOR_HOST")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "PYTHONPATH": ROOT, **env},
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


IMPORT_EVERY_INFRA_MODULE = """
import importlib, json, logging, os, pkgutil
before_env, before_filters = dict(os.environ), list(logging.getLogger().filters)
import infra
names = sorted(m.name for m in pkgutil.iter_modules(infra.__path__, "infra."))
for name in names:
    importlib.import_module(name)
from apache_beam.internal.gcp import auth
import pyarrow as pa
print(json.dumps({
    "modules": names,
    "env_changed": sorted(k for k in set(before_env) | set(os.environ) if before_env.get(k) != os.environ.get(k)),
    "root_filters_added": [repr(f) for f in logging.getLogger().filters if f not in before_filters],
    "traitlets_filters": len(logging.getLogger("traitlets").filters),
    "credentials_cache_filled": auth._Credentials._credentials_init,
    "arrow_pool": pa.default_memory_pool().backend_name,
}))
"""


def test_importing_infra_changes_nothing_in_the_process():
    found = run_python(IMPORT_EVERY_INFRA_MODULE, STORAGE_EMULATOR_HOST=EMULATOR)
    assert {"infra.runtime", "infra.storage", "infra.spill", "infra.writers"} <= set(found["modules"])
    assert found["env_changed"] == []
    assert found["root_filters_added"] == []
    assert found["traitlets_filters"] == 0
    assert found["credentials_cache_filled"] is False  # Beam's credential cache is left alone
    assert found["arrow_pool"] != ARROW_POOL  # pyarrow loaded with its own default pool


CONFIGURE_PROCESS_FIRST = """
import json, logging, os
from infra.runtime import configure_process
configure_process()
configure_process()  # idempotent: one filter, not two
import pyarrow as pa
from apache_beam.internal.gcp import auth
note = logging.LogRecord("root", logging.WARNING, "", 0, "apitools not found, and bigquery client libraries are not", (), None)
other = logging.LogRecord("root", logging.WARNING, "", 0, "a warning of our own", (), None)
root = logging.getLogger()
print(json.dumps({
    "variable": os.environ.get("ARROW_DEFAULT_MEMORY_POOL"),
    "arrow_pool": pa.default_memory_pool().backend_name,
    "root_filters": len(root.filters),
    "note_shown": root.filter(note), "other_shown": bool(root.filter(other)),
    "credentials_cache_filled": auth._Credentials._credentials_init,
}))
"""


def test_configure_process_before_pyarrow_sets_arrows_pool_and_filters_beams_apitools_note():
    found = run_python(CONFIGURE_PROCESS_FIRST, STORAGE_EMULATOR_HOST=EMULATOR)
    assert found["variable"] == ARROW_POOL
    assert found["arrow_pool"] == ARROW_POOL
    assert found["root_filters"] == 1
    assert found["note_shown"] is False and found["other_shown"] is True
    assert found["credentials_cache_filled"] is True  # the emulator is reached anonymously, at once


SETUP_AFTER_PYARROW = """
import json, os
import pyarrow as pa
from infra.runtime import configure_worker
os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"  # as a DoFn's setup would, after its module's imports
arrow_pool = pa.default_memory_pool().backend_name
configure_worker()
before = pa.system_memory_pool().bytes_allocated()
data = pa.array(range(100_000), type=pa.int64())
print(json.dumps({
    "arrow_pool": arrow_pool,
    "pyarrow_pool": pa.default_memory_pool().backend_name,
    "system_pool_grew_by": pa.system_memory_pool().bytes_allocated() - before,
}))
"""


def test_a_dofns_setup_is_too_late_for_arrows_variable_but_switches_pyarrows_own_pool():
    found = run_python(SETUP_AFTER_PYARROW)
    assert found["arrow_pool"] != ARROW_POOL  # chosen when pyarrow was imported: the variable came too late
    assert found["pyarrow_pool"] == ARROW_POOL
    assert found["system_pool_grew_by"] >= 100_000 * 8  # pyarrow's allocations now go to the system pool


@pytest.mark.slow
def test_local_workers_inherit_the_launchers_arrow_pool_and_reach_the_emulator_anonymously(monkeypatch):
    """The workers of multi_processing are new interpreters: the variable reaches them from the launcher
    (pytest_configure made this process one), and StageDoFn's setup connects them to the emulator."""
    assert os.environ.get(ARROW_POOL_VARIABLE) == ARROW_POOL
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", EMULATOR)  # read by each worker as it starts
    expected = {
        "another_process": True,
        "arrow_variable": ARROW_POOL,
        "pyarrow_pool": ARROW_POOL,
        "credentials_cache_filled": True,
    }
    with local_pipeline("--direct_running_mode=multi_processing", "--direct_num_workers=1") as p:  # one worker proves it
        found = p | beam.Create([os.getpid()]) | ApplyStage(WorkerSettingsFn())
        assert_that(found.kept, equal_to([expected]))


def test_the_worker_image_sets_arrows_variable_as_the_launcher_does():
    from tests.dataflow_rehearsal import image_env

    assert image_env(ROOT).get(ARROW_POOL_VARIABLE) == ARROW_POOL
