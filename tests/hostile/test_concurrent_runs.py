"""Two runs started at once on one dataset, on local disk and on Cloud Storage: never a corrupt version.

Before the dataset lock, the second run deleted the first's staging directory as "an
earlier run that stopped" and the commit replaced an existing version without
--overwrite: the manifest then listed files that were not there, and both runs exited 0.
Now one run holds the lock and the other stops at once, naming it; every version left
passes `code-corpus verify`, and a run that exits 0 has written a version that does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from infra import storage
from infra.lock import DatasetLock, DatasetLocked
from infra.verify import verify_version
from infra.version import VersionError, VersionStore
from tests.conftest import ROOT, copy_code_sample, run_cli


def two_runs_at_once(out: str, config: str) -> list[subprocess.CompletedProcess]:
    """`code-corpus run` in a new process and, while that one starts, in this one (whose imports are done)."""
    cli = shutil.which("code-corpus", path=os.path.dirname(sys.executable)) or "code-corpus"
    args = ["run", "--config", config, "--out", out, "--stages", "corpus"]
    other = subprocess.Popen([cli, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    here = run_cli(*args, check=False)
    stdout, stderr = other.communicate(timeout=900)  # reads its pipes while waiting: a full one would stall it
    return [here, subprocess.CompletedProcess(other.args, other.returncode, stdout, stderr)]


def check_no_corrupt_version(out: str, runs: list[subprocess.CompletedProcess]) -> None:
    dataset = storage.join(out, "sample")
    versions = [v for v in storage.list_children(dataset) if v.startswith("v")]
    assert any(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    for run in runs:
        assert run.returncode == 0 or "another run is writing to" in run.stderr, run.stderr[-2000:]
    assert versions and len(versions) == sum(r.returncode == 0 for r in runs)
    for version in versions:
        proc = run_cli("verify", storage.join(dataset, version), check=False)
        assert proc.returncode == 0 and ": ok," in proc.stdout, proc.stdout
    assert ".lock" not in storage.list_children(dataset)  # released by whichever held it


@pytest.mark.slow
def test_two_runs_at_once_on_local_disk_leave_no_version_verify_rejects(tmp_path):
    out = str(tmp_path / "datasets")
    check_no_corrupt_version(out, two_runs_at_once(out, copy_code_sample(tmp_path)))


@pytest.mark.slow
def test_two_runs_at_once_on_cloud_storage_leave_no_version_verify_rejects(gcs, tmp_path):
    check_no_corrupt_version(gcs, two_runs_at_once(gcs, copy_code_sample(tmp_path)))


def test_a_second_lock_on_a_dataset_is_refused_while_the_first_is_held(tmp_path):
    dataset = str(tmp_path / "sample")
    with DatasetLock(dataset):
        with pytest.raises(DatasetLocked, match="another run is writing to .* held by pid"):
            with DatasetLock(dataset):
                pass
    with DatasetLock(dataset):  # released: the next run gets it
        pass


def test_a_second_lock_on_a_cloud_dataset_is_refused_by_the_generation_precondition(gcs):
    dataset = f"{gcs}/sample"
    with DatasetLock(dataset):
        with pytest.raises(DatasetLocked, match="held by pid .* lease until"):
            with DatasetLock(dataset):
                pass
    assert not storage.exists(f"{dataset}/.lock")
    with DatasetLock(dataset):
        pass


def test_commit_never_replaces_an_existing_version_without_overwrite(tmp_path):
    store = VersionStore(str(tmp_path), "sample")
    storage.write_bytes(os.path.join(store.path("v0001"), "manifest.json"), b"{}")
    version, staging = store.begin("v0002", overwrite=False)
    storage.write_bytes(os.path.join(staging, "manifest.json"), b'{"files": {}}')
    os.rename(staging, store.staging("v0001"))  # as if another run took v0001 meanwhile
    with pytest.raises(VersionError, match="already exists and --overwrite was not given"):
        store.commit(store.staging("v0001"), "v0001")
    assert storage.read_bytes(os.path.join(store.path("v0001"), "manifest.json")) == b"{}"


def test_verify_names_every_missing_or_changed_file_and_fails(tmp_path):
    version = tmp_path / "v0001"
    (version / "documents").mkdir(parents=True)
    (version / "documents" / "a.parquet").write_bytes(b"one")
    (version / "documents" / "b.parquet").write_bytes(b"two")
    contents = {"a": b"one", "b": b"two", "c": b"three"}
    files = {f"documents/{n}.parquet": {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for n, d in contents.items()}
    (version / "manifest.json").write_text(json.dumps({"name": "sample", "version": "v0001", "files": files}))
    assert verify_version(str(version)).problems == ["missing: documents/c.parquet"]
    (version / "documents" / "a.parquet").write_bytes(b"ONE")
    result = verify_version(str(version))
    assert not result.ok and result.problems[0].startswith("changed: documents/a.parquet")
    proc = run_cli("verify", str(version), check=False)
    assert proc.returncode == 1 and "CORRUPT" in proc.stdout and "missing: documents/c.parquet" in proc.stdout
