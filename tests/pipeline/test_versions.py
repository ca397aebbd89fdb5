"""Versions: parents, diff, and crash safety (a killed run never looks complete)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.diff import diff_versions, render_diff
from tests.conftest import ROOT, SAMPLE_CONFIG, copy_code_sample, run_cli
from tests.pipeline.test_version_store import write_version


def test_diff_reports_documents_config_and_counts(tmp_path):
    def version(name: str, ids: list[str], max_file_bytes: int, files: int, binary: int, tokenizer: str) -> str:
        counts = {"read": {"in": files, "kept": files - 1 - binary, "rejected": {"binary": binary, "not-utf8": 1}}}
        config = {"name": "sample", "read": {"max_file_bytes": max_file_bytes, "skip_hidden": True}}
        return write_version(str(tmp_path), name, 2, ids, config=config, counts=counts, tokenizer={"hash": tokenizer})

    v1 = version("v0001", ["a", "b", "mathlib/vector.py", "c"], 1000000, 6, 1, "t1")
    v2 = version("v0002", ["a", "b", "textkit/numbers.py", "c"], 900000, 7, 2, "t2")
    d = diff_versions(v1, v2)
    assert d["a"] == "sample/v0001" and d["b"] == "sample/v0002"
    assert d["documents"]["added"] == ["textkit/numbers.py"]
    assert d["documents"]["removed"] == ["mathlib/vector.py"]
    assert d["config"] == [("read.max_file_bytes", 1000000, 900000)]
    assert d["tokenizer"] == {"a": "t1", "b": "t2"}
    assert d["counts"] == [("read", "read", 6, 7), ("read", "rejected:binary", 1, 2)]
    shown = run_cli("diff", v1, v2).stdout
    assert "+ textkit/numbers.py" in shown and "- mathlib/vector.py" in shown and "read.max_file_bytes" in shown
    assert "tokenizer: changed" in shown
    assert render_diff(d) in shown
    # Shards laid out differently are compared as a whole.
    v3 = write_version(str(tmp_path), "v0003", 3, ["c", "b", "a", "textkit/numbers.py"])
    assert diff_versions(v2, v3)["documents"] == {"a": 4, "b": 4, "added": [], "removed": []}


def test_diff_of_identical_versions_is_empty(sample_version):
    d = diff_versions(str(sample_version("in_memory")[0]), str(sample_version("multi_processing")[0]))
    assert d["documents"]["added"] == d["documents"]["removed"] == []
    assert d["config"] == [] and d["counts"] == []
    assert d["tokenizer"]["a"] is not None and d["tokenizer"]["a"] == d["tokenizer"]["b"]


@pytest.mark.slow
def test_killed_run_leaves_no_complete_looking_version_and_next_run_cleans_it(tmp_path):
    out = tmp_path / "out"
    run = ["run", "--config", copy_code_sample(tmp_path), "--out", str(out), "--stages", "corpus"]
    exe = os.path.join(os.path.dirname(sys.executable), "code-corpus")
    proc = subprocess.Popen([exe, *run], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = out / "sample" / ".v0001.partial"
    deadline = time.monotonic() + 60
    while not staging.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert staging.exists()
    assert not (out / "sample" / "v0001").exists()

    rerun = run_cli(*run)
    assert "removing .v0001.partial" in rerun.stderr
    assert not staging.exists()
    assert (out / "sample" / "v0001" / "manifest.json").is_file()


def test_previous_must_be_a_complete_version(tmp_path):
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", str(tmp_path), "--previous", str(tmp_path), check=False)
    assert proc.returncode != 0 and "not a complete dataset version" in proc.stderr
