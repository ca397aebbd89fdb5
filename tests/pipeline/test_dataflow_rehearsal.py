"""The Dataflow path, rehearsed: every DoFn runs in workers built from the worker image's contents.

tests/dataflow_rehearsal.py installs what the Dockerfile puts in the image (and nothing
else) into a fresh virtual environment and starts Beam's worker pool from it, with a
working directory and home of its own and none of this process's environment but the
storage emulator's address. The launcher runs here with Beam's portable runner, which
sends every bundle to that pool; the version lands on the Cloud Storage emulator, passes
`code-corpus verify`, and is byte-identical to the same run here, in one process (for the
sample, the session's build of it, which ran the later stages too: every file the corpus
stage wrote, and the manifest's facts about them).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from infra import storage
from infra.version import MANIFEST, RUN_INFO, read_manifest
from pipeline.report import REPORT
from tests.conftest import EXAMPLES, SAMPLE_CONFIG, run_cli
from tests.dataflow_rehearsal import ROOT, build_worker_environment, image_files, worker_pool

pytestmark = pytest.mark.slow  # installs the worker image's packages into a new environment (minutes)

LATER_STAGES_KEYS = ("stages", "tokenizer", "shards")  # what the tokenizer and binarize stages add to a manifest
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


def check_every_module_imports(venv: str, workdir) -> None:
    """Every package the image ships imports in the worker environment alone, from its own folder."""
    packages = sorted({f.split("/")[0] for f in image_files(ROOT) if f.count("/") == 1 and f.endswith("/__init__.py")})
    assert packages == ["infra", "pipeline", "schemas", "tokenizer_training", "trainer", "transforms"]
    script = IMPORT_EVERY_MODULE.format(train_extra=set(TRAIN_EXTRA))
    proc = subprocess.run(
        [os.path.join(venv, "bin", "python"), "-c", script, *packages],
        cwd=workdir,
        env={"PATH": "/usr/bin:/bin", "HOME": str(workdir)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(line.startswith("train extra: trainer.") for line in proc.stdout.splitlines())
    assert os.path.exists(os.path.join(venv, "bin", "code-corpus"))


def run_on_the_pool(config: str, out: str, flags: list[str], pool_log) -> str:
    """`--stages corpus` of `config` with its bundles on the pool's workers; returns the version, checked by `verify`."""
    started = pool_log.read_text().count("Starting worker")
    run_cli("run", "--config", config, "--out", out, "--stages", "corpus", *flags)
    assert pool_log.read_text().count("Starting worker") > started  # the bundles went to the pool's workers
    version = f"{out}/{os.path.splitext(os.path.basename(config))[0]}/v0001"
    run_cli("verify", version)  # exits non-zero on any file that does not match the manifest
    return version


def check_same_corpus(rehearsed: str, here: str) -> None:
    """Every file of the rehearsed corpus stage is byte-identical to `here`'s, a version of the same
    config built in this process (that may have run the later stages too), and so are the manifest's
    facts about them."""
    manifest, built = read_manifest(rehearsed), read_manifest(here)
    names = storage.list_files(rehearsed)
    assert set(names) <= set(storage.list_files(here)) and any(n.startswith("documents/") for n in names)
    differ = {RUN_INFO} if manifest["stages"] == built["stages"] else {RUN_INFO, MANIFEST, REPORT}
    for rel in set(names) - differ:  # the run's wall-clock facts, and what the later stages add
        assert storage.read_bytes(f"{rehearsed}/{rel}") == storage.read_bytes(f"{here}/{rel}"), rel
    assert manifest["counts"] == {stage: built["counts"][stage] for stage in manifest["counts"]}
    assert manifest["files"] == {rel: built["files"][rel] for rel in manifest["files"]}
    for key in manifest.keys() - {"counts", "files", *LATER_STAGES_KEYS}:
        assert manifest[key] == built[key], key


def test_the_worker_image_s_contents_run_the_pipeline_as_this_process_does(gcs, tmp_path, sample_version):
    """One test, so that one worker of the suite builds the environment and the others go on. The sample's
    corpus is compared with the session's sample build, which every other worker reads too."""
    venv = build_worker_environment(ROOT, str(tmp_path))
    check_every_module_imports(venv, tmp_path)
    pool_log = tmp_path / "pool.log"
    with worker_pool(venv, str(tmp_path / "workdir"), str(pool_log)) as flags:  # sees the store, set by `gcs`
        sample = run_on_the_pool(SAMPLE_CONFIG, f"{gcs}/workers", flags, pool_log)
        check_same_corpus(sample, str(sample_version()[0]))
        the_stack = os.path.join(EXAMPLES, "the-stack.yaml")
        rehearsed = run_on_the_pool(the_stack, f"{gcs}/workers", flags, pool_log)
        run_cli("run", "--config", the_stack, "--out", f"{gcs}/here", "--stages", "corpus")
        check_same_corpus(rehearsed, f"{gcs}/here/the-stack/v0001")
