"""`--previous` against an earlier version whose dedup files were damaged: the run stops before any work.

The earlier version's Bloom filter decides which new files are "already seen": with every
bit set, every new file was rejected as a duplicate; with every bit cleared, the old files
came back; a truncated filter or signature shard gave a traceback mid-run, and a FIFO in
place of bloom.bin hung it. Now the dedup files (dedup/bloom.bin, dedup/minhash/*) are
checked against the earlier version's manifest before the run touches anything, and a
mismatch is an error naming the key and the file.
"""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from tests.conftest import SAMPLE_CONFIG, run_cli

BLOOM = "dedup/bloom.bin"
BLOOM_HEADER = 40  # pybloom-live's header (error rate, slices, bits per slice, capacity, count) before the bits


def overwrite_bits(value: int):
    def damage(path: str) -> None:
        with open(path, "r+b") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(BLOOM_HEADER)
            f.write(bytes([value]) * (size - BLOOM_HEADER))

    return damage


def truncate(path: str) -> None:
    with open(path, "r+b") as f:
        f.truncate(f.seek(0, os.SEEK_END) // 2)


def make_fifo(path: str) -> None:
    os.remove(path)
    os.mkfifo(path)


def first_signature_shard(version: str) -> str:
    files = json.load(open(os.path.join(version, "manifest.json")))["files"]
    return next(rel for rel in sorted(files) if rel.startswith("dedup/minhash/"))


def run_bounded(*args: str, seconds: float = 120):
    done: list = []
    worker = threading.Thread(target=lambda: done.append(run_cli(*args, check=False)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert done, f"the run did not stop in {seconds}s"
    return done[0]


DAMAGE = {
    "all-bits-set": (BLOOM, overwrite_bits(0xFF)),
    "all-bits-cleared": (BLOOM, overwrite_bits(0x00)),
    "truncated": (BLOOM, truncate),
    "fifo": (BLOOM, make_fifo),
    "removed": (BLOOM, os.remove),
    "signatures-truncated": (None, truncate),
    "signatures-fifo": (None, make_fifo),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_earlier_version_stops_the_run_before_any_work(sample_version, tmp_path, damage):
    built, _ = sample_version()
    previous = tmp_path / "previous" / "sample" / "v0001"
    shutil.copytree(built, previous)
    rel, change = DAMAGE[damage]
    rel = rel or first_signature_shard(str(previous))
    change(str(previous / rel))
    out = tmp_path / "out"
    proc = run_bounded("run", "--config", SAMPLE_CONFIG, "--out", str(out), "--previous", str(previous))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]  # 2: a configuration error
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: dedup.previous_versions[0]: ") and rel in error, error
    assert not os.path.exists(out / "sample") or os.listdir(out / "sample") == []  # nothing staged, nothing locked


def test_an_extra_signature_shard_in_the_earlier_version_stops_the_run(sample_version, tmp_path):
    built, _ = sample_version()
    previous = tmp_path / "previous" / "sample" / "v0001"
    shutil.copytree(built, previous)
    shard = first_signature_shard(str(previous))
    shutil.copy(previous / shard, previous / "dedup" / "minhash" / "part-extra.parquet")
    proc = run_bounded("run", "--config", SAMPLE_CONFIG, "--out", str(tmp_path / "out"), "--previous", str(previous))
    assert proc.returncode == 2 and "unlisted: dedup/minhash/part-extra.parquet" in proc.stderr, proc.stderr[-3000:]
