"""One run at a time per dataset: an exclusive lock held from the first look at the dataset to the commit.

Without it two runs on one `--out` both pick the same next version, each removes the
other's staging directory as "an earlier run that stopped", and the commit of one
deletes the other's files. Locally the lock is `flock` on `<dataset>/.lock`, which the
kernel releases when the process dies, however it dies. On Cloud Storage it is the
object `<dataset>/.lock`, created with the precondition ifGenerationMatch=0 (the
store's compare-and-swap) and deleted at the end only if it is still ours; a run that
was killed leaves it, and the message says how to remove it.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket

from infra import storage
from infra.version import VersionError

LOCK_FILE = ".lock"


class DatasetLocked(VersionError):
    """Another run holds the dataset's lock; the message names it and what to do."""


def holder_info() -> bytes:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": now}).encode()


class DatasetLock:
    """`with DatasetLock(dataset_dir):` holds the dataset for this run, or raises DatasetLocked at once."""

    def __init__(self, dataset_dir: str):
        self.dataset_dir = dataset_dir
        self.path = storage.join(dataset_dir, LOCK_FILE)
        self._fd: int | None = None
        self._generation: int | None = None

    def __enter__(self) -> DatasetLock:
        if storage.is_local(self.path):
            self._lock_local()
        else:
            self._generation = storage.create_if_absent(self.path, holder_info())
            if self._generation is None:
                raise DatasetLocked(
                    f"another run is writing to {self.dataset_dir} ({self._holder()}); wait for it to finish. If no run "
                    f"is going (one was killed), remove the lock: gcloud storage rm {self.path}"
                )
        return self

    def _lock_local(self) -> None:
        os.makedirs(self.dataset_dir, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DatasetLocked(
                    f"another run is writing to {self.dataset_dir} ({self._holder()}); wait for it to finish"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file the previous holder unlinked while we waited to lock it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, holder_info())
        self._fd = fd

    def _holder(self) -> str:
        try:
            info = json.loads(storage.read_bytes(self.path) or b"{}")
            return f"lock {self.path} held by pid {info['pid']} on {info['host']} since {info['since']}"
        except Exception:  # the holder may be writing it, or gone: the path is what matters
            return f"lock {self.path}"

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.unlink(self.path)  # while still held, so no one locks a file that is about to go
            os.close(self._fd)
            self._fd = None
        elif self._generation is not None:
            storage.delete_if_generation(self.path, self._generation)
            self._generation = None
