"""The Cloud Storage dataset lock against a holder that dies, and against a create whose reply is lost.

A launcher killed by preemption, the OOM killer or SIGKILL used to leave `<dataset>/.lock`
for ever: every later run failed until someone deleted it by hand. Now the lock carries
its holder and a lease deadline, the holder renews it while it runs, and a later run
takes an expired lease over (conditioned on the generation it read), saying whose lease
it broke. The lease is shortened for these tests through CODE_CORPUS_LOCK_LEASE_SECONDS.
"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from infra import storage
from infra.lock import LEASE_ENV, DatasetLock, DatasetLocked
from infra.version import VersionError
from tests.conftest import ROOT, use_gcs_server

LEASE = 2.0
HOLDER = """
import sys
from infra.runtime import configure_process
configure_process()
from infra.lock import DatasetLock, DatasetLocked
lock = DatasetLock(sys.argv[1]).__enter__()
print("held", flush=True)
sys.stdin.readline()  # held (and renewed) until told to check, or killed
try:
    lock.check_held()
    print("still held", flush=True)
except DatasetLocked as e:
    print("lost:", e, flush=True)
lock.__exit__(None, None, None)
"""


def start_holder(dataset: str) -> subprocess.Popen:
    """A process that takes the dataset's lock and keeps it (renewing) until it is killed or told to check it."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, dataset], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    assert read_line(holder) == "held", "the holder did not take the lock"
    return holder


def read_line(proc: subprocess.Popen, seconds: float = 60) -> str:
    """The process's next line of output, failing rather than hanging."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline().strip()), daemon=True)
    reader.start()
    reader.join(seconds)
    assert line, f"no line from the process in {seconds}s"
    return line[0]


def lock_object(path: str) -> dict:
    return json.loads(storage.read_bytes(path))


@pytest.mark.slow  # waits out a lease in real time
def test_a_killed_holders_lock_is_taken_over_once_its_lease_expires(gcs, monkeypatch, caplog):
    monkeypatch.setenv(LEASE_ENV, str(LEASE))
    dataset = f"{gcs}/sample"
    holder = start_holder(dataset)
    try:
        first = lock_object(f"{dataset}/.lock")
        assert first["pid"] == holder.pid and first["lease_seconds"] == LEASE
        time.sleep(LEASE * 1.5)  # past the first lease: only a renewal keeps the holder's lock
        renewed = lock_object(f"{dataset}/.lock")
        assert renewed["lease_until"] > first["lease_until"]
        with pytest.raises(DatasetLocked, match=f"held by pid {holder.pid} .*lease until"):
            DatasetLock(dataset).__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    killed_at = time.monotonic()
    with pytest.raises(DatasetLocked, match="lease until"):  # its lease has not run out yet
        DatasetLock(dataset).__enter__()
    with caplog.at_level(logging.WARNING, logger="infra.lock"):
        lock = take_within(dataset, LEASE * 4)
    assert time.monotonic() - killed_at >= LEASE / 3  # not before the dead holder's last lease ran out
    broke = [r.getMessage() for r in caplog.records if "took over the lock" in r.getMessage()]
    last = lock_object(f"{dataset}/.lock")
    assert last["pid"] == os.getpid()
    assert len(broke) == 1 and f"pid {holder.pid} on" in broke[0] and "lease expired at" in broke[0]
    lock.__exit__(None, None, None)
    assert not storage.exists(f"{dataset}/.lock")


def take_within(dataset: str, seconds: float) -> DatasetLock:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return DatasetLock(dataset).__enter__()
        except DatasetLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow  # waits out a lease in real time
def test_a_holder_frozen_past_its_lease_finds_its_lock_lost(gcs, monkeypatch):
    """A holder stopped (SIGSTOP) past its lease loses the lock; woken, it knows, and leaves the new holder's lock alone."""
    monkeypatch.setenv(LEASE_ENV, str(LEASE))
    dataset = f"{gcs}/sample"
    holder = start_holder(dataset)
    try:
        holder.send_signal(signal.SIGSTOP)
        other = take_within(dataset, LEASE * 4)
        holder.send_signal(signal.SIGCONT)
        time.sleep(LEASE)  # its next renewal finds the generation changed
        holder.stdin.write("check\n")
        holder.stdin.flush()
        assert read_line(holder).startswith("lost: the lock") and holder.wait(30) == 0
    finally:
        holder.kill()
        holder.wait(30)
    assert lock_object(f"{dataset}/.lock")["pid"] == os.getpid()  # the woken holder did not delete it
    other.__exit__(None, None, None)
    assert not storage.exists(f"{dataset}/.lock")


class DropFirstLockReply(http.server.BaseHTTPRequestHandler):
    """A proxy to the emulator that forwards every request, but cuts the connection instead of
    answering the first upload of a `.lock` object: the create lands, its reply is lost."""

    upstream = ""
    dropped: list[str] = []

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = urllib.parse.urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        reply = conn.getresponse()
        data = reply.read()
        if self.command == "POST" and "/upload/" in self.path and b".lock" in body + self.path.encode() and not self.dropped:
            self.dropped.append(self.path)
            self.close_connection = True
            self.connection.shutdown(2)  # the object was written; the client hears nothing
            return
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    def log_message(self, *args):
        pass


def test_a_retried_create_recognises_its_own_lock(gcs_server, gcs, monkeypatch):
    DropFirstLockReply.upstream, DropFirstLockReply.dropped = gcs_server, []
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DropFirstLockReply)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        use_gcs_server(monkeypatch, f"http://127.0.0.1:{proxy.server_address[1]}")
        dataset = f"{gcs}/sample"
        lock = DatasetLock(dataset).__enter__()
        assert DropFirstLockReply.dropped, "the proxy never dropped the create's reply"
        assert lock_object(f"{dataset}/.lock")["pid"] == os.getpid()
        lock.__exit__(None, None, None)
        assert not storage.exists(f"{dataset}/.lock")  # released: it was this run's own generation
    finally:
        proxy.shutdown()


def test_a_lease_setting_that_is_not_a_number_of_seconds_is_named(gcs, monkeypatch):
    for value in ("nan", "0", "-1", "soon"):
        monkeypatch.setenv(LEASE_ENV, value)
        with pytest.raises(VersionError, match=LEASE_ENV):
            DatasetLock(f"{gcs}/sample").__enter__()
