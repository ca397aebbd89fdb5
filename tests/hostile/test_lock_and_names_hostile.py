"""The local dataset lock against links planted in its place, and version names that are not names.

A `.lock` that was a symbolic link had its target truncated and overwritten with the
holder's JSON; `--dataset-version 'v0001\\n'` made a folder with a newline in its name (the
pattern's `$` matched before the trailing newline). Now the lock is opened with
O_NOFOLLOW and O_EXCL semantics and must be a regular file with one link, and version
names must be `v` and four or more digits, whole.
"""

from __future__ import annotations

import json
import os
import threading

import pytest

from infra.lock import DatasetLock, DatasetLocked
from infra.version import VersionError, VersionStore
from tests.conftest import copy_code_sample, run_cli

TARGET = b"a user's file, not a lock\n"


def planted(tmp_path, kind: str) -> tuple[str, str]:
    """(dataset folder, a file outside it) with `<dataset>/.lock` planted as `kind`."""
    dataset, target = tmp_path / "sample", tmp_path / "precious.txt"
    dataset.mkdir()
    target.write_bytes(TARGET)
    lock = dataset / ".lock"
    if kind == "symlink":
        lock.symlink_to(target)
    elif kind == "dangling symlink":
        lock.symlink_to(tmp_path / "would-be-created")
    elif kind == "hard link":
        os.link(target, lock)
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    return str(dataset), str(target)


def take_bounded(dataset: str, seconds: float = 30) -> BaseException | None:
    """Try the lock on a thread; the error it raised (None if it was taken), failing the test on a hang."""
    outcome: list = []

    def take():
        try:
            with DatasetLock(dataset):
                outcome.append(None)
        except BaseException as e:  # noqa: BLE001 (the test inspects it)
            outcome.append(e)

    worker = threading.Thread(target=take, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"taking the lock did not end in {seconds}s"
    return outcome[0]


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "hard link", "fifo", "directory"])
def test_a_planted_lock_is_refused_and_never_written_through(tmp_path, kind):
    dataset, target = planted(tmp_path, kind)
    before = os.stat(target)
    error = take_bounded(dataset)
    assert isinstance(error, DatasetLocked) and os.path.join(dataset, ".lock") in str(error), error
    assert open(target, "rb").read() == TARGET and os.stat(target).st_mtime_ns == before.st_mtime_ns
    assert not os.path.exists(tmp_path / "would-be-created")
    assert os.path.lexists(os.path.join(dataset, ".lock"))  # left for the user to look at; nothing is deleted


def test_a_lock_file_left_by_a_killed_run_is_taken(tmp_path):
    dataset = tmp_path / "sample"
    dataset.mkdir()
    (dataset / ".lock").write_text(json.dumps({"host": "gone", "pid": 1, "since": "then"}))
    assert take_bounded(str(dataset)) is None
    assert not (dataset / ".lock").exists()  # released at the end


@pytest.mark.parametrize("name", ["v0001\n", "v0001 ", "v1", "v0001/../v0002", "../v0001", "V0001", "v０００１"])
def test_version_names_are_checked_whole(tmp_path, name):
    with pytest.raises(VersionError, match="version names look like v0001"):
        VersionStore(str(tmp_path), "sample").begin(name, overwrite=False)
    assert not (tmp_path / "sample").exists() or os.listdir(tmp_path / "sample") == []


def test_a_version_name_with_a_newline_is_refused_before_any_work(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--config", copy_code_sample(tmp_path), "--out", str(out), "--dataset-version", "v0001\n", check=False)
    assert proc.returncode == 1 and "--dataset-version: version names look like v0001" in proc.stderr, proc.stderr
    assert "'v0001\\n'" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
