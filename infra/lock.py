"""One run at a time per dataset: an exclusive lock held from the first look at the dataset to the commit.

Without it two runs on one `--out` both pick the same next version, each removes the
other's staging directory as "an earlier run that stopped", and the commit of one
deletes the other's files.

Locally the lock is `flock` on `<dataset>/.lock`, which the kernel releases when the
process dies, however it dies. The file is opened with O_NOFOLLOW, and must be a regular
file with one link: a `.lock` that is a symbolic or hard link to another file is refused,
never written through.

On Cloud Storage it is the object `<dataset>/.lock`, holding its holder and a lease
deadline. It is created with the precondition ifGenerationMatch=0 (the store's
compare-and-swap); a thread renews the lease while the run goes on, each renewal
conditioned on the generation it last wrote. A run killed however it dies (preemption,
OOM, SIGKILL) stops renewing, and once its lease has expired the next run takes the lock
over, again conditioned on the generation it read, and says whose lease it broke. A
create whose reply was lost and retried finds its own lock and keeps it. The lock is
deleted at the end only if it is still the run's own generation.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import stat
import threading
import uuid

from infra import storage
from infra.version import VersionError

LOCK_FILE = ".lock"
LEASE_ENV = "CODE_CORPUS_LOCK_LEASE_SECONDS"  # the Cloud Storage lease; tests shorten it
DEFAULT_LEASE_SECONDS = 300.0  # renewed every third of it: two renewals may fail before the lease runs out

log = logging.getLogger(__name__)


class DatasetLocked(VersionError):
    """Another run holds the dataset's lock; the message names it and what to do."""


def lease_seconds() -> float:
    """The Cloud Storage lease, from CODE_CORPUS_LOCK_LEASE_SECONDS when set."""
    value = os.environ.get(LEASE_ENV)
    if value is None:
        return DEFAULT_LEASE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0.5 <= seconds <= 86400:  # also refuses nan and inf
        raise VersionError(f"{LEASE_ENV}={value!r}: give the lock's lease in seconds, from 0.5 to 86400")
    return seconds


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def holder_info() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": _now().isoformat(timespec="seconds")}


def describe_holder(info: dict) -> str:
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"


class DatasetLock:
    """`with DatasetLock(dataset_dir):` holds the dataset for this run, or raises DatasetLocked at once."""

    def __init__(self, dataset_dir: str):
        self.dataset_dir = dataset_dir
        self.path = storage.join(dataset_dir, LOCK_FILE)
        self._fd: int | None = None
        self._lease: _Lease | None = None

    def __enter__(self) -> DatasetLock:
        if storage.is_local(self.path):
            self._lock_local()
        else:
            self._lease = _Lease(self.path, self.dataset_dir)
            self._lease.take()
        return self

    def check_held(self) -> None:
        """Raise DatasetLocked if the run lost its lock (its lease expired and another run took it)."""
        if self._lease is not None:
            self._lease.check_held()

    def _lock_local(self) -> None:
        os.makedirs(self.dataset_dir, exist_ok=True)
        while True:
            fd = _open_lock_file(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DatasetLocked(
                    f"another run is writing to {self.dataset_dir} ({self._holder()}); wait for it to finish"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file the previous holder unlinked while we waited to lock it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder_info()).encode())
        self._fd = fd

    def _holder(self) -> str:
        try:
            with open(self.path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW | os.O_NONBLOCK)) as f:
                return f"lock {self.path} held by {describe_holder(json.loads(f.read(4096) or b'{}'))}"
        except Exception:  # the holder may be writing it, or gone: the path is what matters
            return f"lock {self.path}"

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.unlink(self.path)  # while still held, so no one locks a file that is about to go
            os.close(self._fd)
            self._fd = None
        elif self._lease is not None:
            self._lease.release()
            self._lease = None


def _open_lock_file(path: str) -> int:
    """The lock file's descriptor: created exclusively, or the regular file a killed run left.

    O_NOFOLLOW refuses a symbolic link at the last component, and O_NONBLOCK keeps a FIFO
    from blocking the open; whatever was opened must be a regular file with one link
    (a hard link to another file would have that file truncated).
    """
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            fd = os.open(path, flags)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise DatasetLocked(f"{path} is a symbolic link, not a lock file; remove it (it is never followed)") from None
            raise DatasetLocked(f"{path} cannot be opened as a lock file: {e.strerror}; remove it") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = "has other hard links" if stat.S_ISREG(st.st_mode) else "is not a regular file"
        raise DatasetLocked(f"{path} {what}; it is not a lock file this tool made: remove it")
    return fd


class _Lease:
    """The Cloud Storage lock object of one run: taken, renewed on a thread, released."""

    def __init__(self, path: str, dataset_dir: str):
        self.path = path
        self.dataset_dir = dataset_dir
        self.seconds = lease_seconds()
        self.token = uuid.uuid4().hex  # tells this run's lock from any other's, whatever host and pid say
        self.holder = holder_info()
        self.generation: int | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def content(self) -> bytes:
        until = _now() + datetime.timedelta(seconds=self.seconds)
        lease = {"token": self.token, "lease_seconds": self.seconds, "lease_until": until.isoformat(timespec="milliseconds")}
        return json.dumps({**self.holder, **lease}).encode()

    def take(self) -> None:
        self.generation = storage.create_if_absent(self.path, self.content())
        if self.generation is None:
            self.generation = self._take_existing()
        self._thread = threading.Thread(target=self._renew, name="dataset-lock-lease", daemon=True)
        self._thread.start()

    def _take_existing(self) -> int:
        """This run's own lock (a retried create), or an expired lease taken over; else DatasetLocked."""
        found = storage.read_with_generation(self.path)
        if found is None:  # released between our create and our read: try once more
            generation = storage.create_if_absent(self.path, self.content())
            if generation is not None:
                return generation
            found = storage.read_with_generation(self.path)
        data, generation = found if found else (b"", 0)
        info = _parse(data)
        if info.get("token") == self.token:
            return generation  # our create landed; its reply was lost and the retry found it
        until = _parse_time(info.get("lease_until"))
        if until is None:
            raise DatasetLocked(
                f"another run is writing to {self.dataset_dir} (lock {self.path} held by {describe_holder(info)}, with no "
                f"lease); wait for it to finish. If no run is going, remove the lock: gcloud storage rm {self.path}"
            )
        if until > _now():
            raise DatasetLocked(
                f"another run is writing to {self.dataset_dir} (lock {self.path} held by {describe_holder(info)}, lease "
                f"until {info.get('lease_until')}); wait for it to finish. A killed run's lock is taken over when its "
                "lease expires"
            )
        taken = storage.replace_if_generation(self.path, self.content(), generation)
        if taken is None:
            raise DatasetLocked(f"another run took the expired lock {self.path} at the same moment; try again")
        log.warning(
            "took over the lock %s: its holder, %s, stopped renewing it; its lease expired at %s",
            self.path,
            describe_holder(info),
            info.get("lease_until"),
        )
        return taken

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3) and self._renew_once():
            pass

    def _renew_once(self) -> bool:
        """Extend the lease, conditioned on the generation last written; False once the lock is lost."""
        try:
            renewed = storage.replace_if_generation(self.path, self.content(), self.generation)
        except Exception as e:  # a failed request: the next renewal may succeed within the lease
            log.warning("could not renew the lock %s: %s", self.path, e)
            return True
        if renewed is None:
            self.lost = f"the lock {self.path} was taken by another run after this run's lease expired"
            log.error("%s", self.lost)
            return False
        self.generation = renewed
        return True

    def check_held(self) -> None:
        if self.lost:
            raise DatasetLocked(f"{self.lost}; nothing was committed")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost and self.generation is not None:
            storage.delete_if_generation(self.path, self.generation)


def _parse(data: bytes) -> dict:
    try:
        info = json.loads(data)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _parse_time(value) -> datetime.datetime | None:
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else None
