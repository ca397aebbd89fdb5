"""The check after a run on Cloud Storage reads no object's content: sizes and md5s come from one listing.

Re-reading a version of a few TB through the launcher takes hours, though the writers
hashed every file as they wrote it. The writers record each file's md5, which Cloud
Storage also computes for every object it stores; `verify --quick` (and the check `run`
makes of a version on gs://) compares the two from the store's listing. The emulator
here logs every request it answers, so the tests count what each check asked for.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from infra import storage
from tests.conftest import GCS_BUCKET, ROOT, copy_code_sample, run_cli, use_gcs_server

DOWNLOAD = re.compile(r"alt=media|/download/")


def content_reads(requests: list[str]) -> list[str]:
    """The downloads among the requests, but for the manifest's own (what the check compares against)."""
    return [line for line in requests if DOWNLOAD.search(line) and "/manifest.json?" not in line]


class LoggedEmulator:
    """The tests' Cloud Storage emulator, started with its request log on (every request line, in order)."""

    def __init__(self, log_path: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log_path = log_path
        self.log = open(log_path, "wb")
        command = [sys.executable, "-m", "tests.gcs_emulator", "start", "-H", "127.0.0.1", "--port", str(self.port)]
        command += ["--default-bucket", GCS_BUCKET, "--in-memory"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log, cwd=ROOT)
        self.host = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.host}/storage/v1/b/{GCS_BUCKET}", timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)

    def requests_during(self, action) -> tuple[object, list[str]]:
        """(what `action()` returned, the request lines the emulator logged while it ran)."""
        start = os.path.getsize(self.log_path)
        result = action()
        time.sleep(0.2)  # the last reply is sent before its line is logged
        with open(self.log_path, "rb") as f:
            f.seek(start)
            lines = f.read().decode("utf-8", "replace").splitlines()
        return result, [line for line in lines if line.startswith('"') and " HTTP/1." in line]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


@pytest.fixture(scope="module")
def gcs_version(tmp_path_factory):
    """(emulator, run output) of the code sample's corpus stage, run to gs:// on a logged emulator."""
    tmp = tmp_path_factory.mktemp("quick")
    emulator = LoggedEmulator(str(tmp / "requests.log"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_gcs_server(monkeypatch, emulator.host)
        out = f"gs://{GCS_BUCKET}/quick"
        proc = run_cli("run", "--config", copy_code_sample(tmp), "--out", out, "--stages", "corpus")
        yield emulator, f"{out}/sample/v0001", proc
    emulator.stop()


@pytest.mark.slow
def test_the_check_after_a_run_on_gcs_is_the_quick_one(gcs_version):
    _, version, proc = gcs_version
    assert f"{version}: ok, " in proc.stderr and "(sizes and stored checksums)" in proc.stderr, proc.stderr[-3000:]
    manifest = json.loads(storage.read_bytes(f"{version}/manifest.json"))
    assert all(len(info["md5"]) == 32 for info in manifest["files"].values())  # every writer recorded one


@pytest.mark.slow
def test_verify_quick_downloads_no_objects_content(gcs_version):
    emulator, version, _ = gcs_version
    files = json.loads(storage.read_bytes(f"{version}/manifest.json"))["files"]
    _, quick = emulator.requests_during(lambda: check_ok(version, "--quick"))
    assert quick and not content_reads(quick), quick
    listings = [line for line in quick if re.search(r"GET /storage/v1/b/corpus/o\?", line)]
    assert 1 <= len(listings) <= 2, quick  # the manifest's existence check lists too; a few files need one page
    _, full = emulator.requests_during(lambda: check_ok(version))
    downloaded = {m.group(1) for line in content_reads(full) if (m := re.search(r"/o/(\S+?)\?", line))}
    assert len(downloaded) == len(files), full  # the counting sees downloads: the full check reads every listed file


def check_ok(version: str, *flags: str) -> None:
    proc = run_cli("verify", version, *flags, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_verify_quick_on_gcs_finds_a_replaced_object_and_an_extra_one(gcs_version, tmp_path):
    emulator, version, _ = gcs_version
    copy = version.replace("/v0001", "/v0009")
    storage.copy_tree(version, copy)
    manifest = json.loads(storage.read_bytes(f"{copy}/manifest.json"))
    shard = next(rel for rel in sorted(manifest["files"]) if rel.startswith("documents/"))
    original = storage.read_bytes(f"{copy}/{shard}")
    storage.write_bytes(f"{copy}/{shard}", bytes(b ^ 0xFF for b in original))  # same size, other bytes
    storage.write_bytes(f"{copy}/documents/part-extra.parquet", original)
    proc, requests = emulator.requests_during(lambda: run_cli("verify", copy, "--quick", check=False))
    assert proc.returncode == 1, proc.stdout
    assert f"changed: {shard}: the store's md5 is" in proc.stdout
    assert "unlisted: documents/part-extra.parquet" in proc.stdout
    assert not content_reads(requests), requests
