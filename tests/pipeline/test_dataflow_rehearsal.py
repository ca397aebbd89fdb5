"""The Dataflow path, rehearsed: every DoFn runs in workers built from the worker image's contents.

tests/dataflow_rehearsal.py installs what the Dockerfile puts in the image (and nothing
else) into a fresh virtual environment and starts Beam's worker pool from it, with a
working directory and home of its own and none of this process's environment but the
storage emulator's address. The launcher runs here with Beam's portable runner, which
sends every bundle to that pool; the version lands on the Cloud Storage emulator, passes
`code-corpus verify`, and is byte-identical to the same run in this process.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from infra import storage
from infra.version import RUN_INFO
from tests.conftest import EXAMPLES, SAMPLE_CONFIG, run_cli, use_gcs_server
from tests.dataflow_rehearsal import ROOT, build_worker_environment, image_files, worker_pool

pytestmark = pytest.mark.slow  # installs the worker image's packages into a new environment (minutes)

TRAIN_EXTRA = ("torch", "transformers")  # the train stage runs in the launcher; the image has no torch
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
for top in sys.argv[1:]:
    package = importlib.import_module(top)
    assert "site-packages" in package.__file__, package.__file__
    for module in pkgutil.walk_packages(package.__path__, top + "."):
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as e:
            if e.name not in {train_extra}:
                raise
            print("train extra:", module.name)
"""


@pytest.fixture(scope="module")
def rehearsal(gcs_server, tmp_path_factory):
    """(the worker environment, the pool's log, the flags that send a run's bundles to its pool)."""
    dest = tmp_path_factory.mktemp("rehearsal")
    venv = build_worker_environment(ROOT, str(dest))
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_gcs_server(monkeypatch, gcs_server)  # the workers' one view of this machine: the store
        with worker_pool(venv, str(dest / "workdir"), str(dest / "pool.log")) as flags:
            yield venv, dest / "pool.log", flags


def test_every_package_imports_from_the_image_alone(rehearsal, tmp_path):
    venv, _, _ = rehearsal
    packages = sorted({f.split("/")[0] for f in image_files(ROOT) if f.count("/") == 1 and f.endswith("/__init__.py")})
    assert packages == ["infra", "pipeline", "schemas", "tokenizer_training", "trainer", "transforms"]
    script = IMPORT_EVERY_MODULE.format(train_extra=set(TRAIN_EXTRA))
    proc = subprocess.run([os.path.join(venv, "bin", "python"), "-c", script, *packages], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(line.startswith("train extra: trainer.") for line in proc.stdout.splitlines())
    assert os.path.exists(os.path.join(venv, "bin", "code-corpus"))


@pytest.mark.parametrize("config", [SAMPLE_CONFIG, os.path.join(EXAMPLES, "the-stack.yaml")], ids=["sample", "the-stack"])
def test_a_run_on_the_image_s_workers_matches_the_run_in_this_process(rehearsal, gcs, config):
    _, pool_log, flags = rehearsal
    started = pool_log.read_text().count("Starting worker")
    name = os.path.splitext(os.path.basename(config))[0]
    for out, extra in [(f"{gcs}/workers", flags), (f"{gcs}/here", [])]:
        run_cli("run", "--config", config, "--out", out, "--stages", "corpus", *extra)
    assert pool_log.read_text().count("Starting worker") > started  # the bundles went to the pool's workers

    rehearsed, here = f"{gcs}/workers/{name}/v0001", f"{gcs}/here/{name}/v0001"
    assert "ok" in run_cli("verify", rehearsed).stdout
    names = storage.list_files(rehearsed)
    assert names == storage.list_files(here) and any(n.startswith("documents/") for n in names)
    for rel in names:
        if rel != RUN_INFO:  # wall-clock facts and the runner's flags
            assert storage.read_bytes(f"{rehearsed}/{rel}") == storage.read_bytes(f"{here}/{rel}"), rel
