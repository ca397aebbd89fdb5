"""Versions: parents, diff, and crash safety (a killed run never looks complete)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from pipeline.diff import diff_versions, render_diff
from schemas.records import RepoFile
from tests.conftest import ROOT, SAMPLE_CONFIG, copy_code_sample, run_cli


@pytest.mark.slow
def test_diff_reports_documents_config_and_counts(tmp_path):
    config = copy_code_sample(tmp_path)
    out = tmp_path / "out"
    run_cli("run", "--config", config, "--out", str(out), "--stages", "corpus,tokenizer")
    examples = tmp_path / "examples"
    os.remove(examples / "repos" / "mathlib" / "mathlib" / "vector.py")
    (examples / "repos" / "textkit" / "textkit" / "numbers.py").write_text("def double(x):\n    return 2 * x\n")
    (examples / "repos" / "textkit" / "assets" / "icon.bin").write_bytes(b"\x00\x01\x02")
    settings = yaml.safe_load((examples / "code.yaml").read_text())
    settings["read"]["max_file_bytes"] = 900000
    (examples / "code.yaml").write_text(yaml.safe_dump(settings))
    run_cli("run", "--config", config, "--out", str(out), "--stages", "corpus,tokenizer")

    v1, v2 = out / "sample" / "v0001", out / "sample" / "v0002"
    d = diff_versions(str(v1), str(v2))
    added = RepoFile.make_id("local", "octo-org/textkit", "textkit/numbers.py", None)
    removed = RepoFile.make_id("local", "numerics/mathlib", "mathlib/vector.py", None)
    assert d["documents"]["added"] == [added]
    assert d["documents"]["removed"] == [removed]
    assert d["config"] == [("read.max_file_bytes", 1000000, 900000)]
    assert None not in d["tokenizer"].values() and d["tokenizer"]["a"] != d["tokenizer"]["b"]  # retrained on other text
    m1 = json.loads((v1 / "manifest.json").read_text())
    files, binaries = m1["counts"]["read"]["in"], m1["counts"]["read"]["rejected"]["binary"]
    assert ("read", "read", files, files + 1) in d["counts"]
    assert ("read", "rejected:binary", binaries, binaries + 1) in d["counts"]
    shown = run_cli("diff", str(v1), str(v2)).stdout
    assert f"+ {added}" in shown and f"- {removed}" in shown and "read.max_file_bytes" in shown
    assert "tokenizer: changed" in shown
    assert render_diff(d) in shown


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


@pytest.mark.slow
def test_incremental_run_skips_what_the_previous_version_holds(tmp_path):
    config = copy_code_sample(tmp_path)
    out = tmp_path / "out"
    run_cli("run", "--config", config, "--out", str(out), "--stages", "corpus")
    v1 = out / "sample" / "v0001"
    reached_dedup_before = json.loads((v1 / "manifest.json").read_text())["counts"]["dedup"]["in"]
    new_file = tmp_path / "examples" / "repos" / "textkit" / "textkit" / "numbers.py"
    new_file.write_text("def triple(value):\n    return 3 * value\n")

    run_cli("run", "--config", config, "--out", str(out), "--stages", "corpus", "--previous", str(v1))
    manifest = json.loads((out / "sample" / "v0002" / "manifest.json").read_text())
    dedup = manifest["counts"]["dedup"]
    assert manifest["parents"] == ["sample/v0001"]
    # Every file that reached dedup in v0001 (kept or duplicate) has its key in v0001's Bloom filter.
    assert dedup["rejected"]["dedup-previous-version"] == reached_dedup_before
    assert dedup["kept"] == 1  # only the new file
    d = diff_versions(str(v1), str(out / "sample" / "v0002"))
    assert RepoFile.make_id("local", "octo-org/textkit", "textkit/numbers.py", None) in d["documents"]["added"]


def test_previous_must_be_a_complete_version(tmp_path):
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", str(tmp_path), "--previous", str(tmp_path), check=False)
    assert proc.returncode != 0 and "not a complete dataset version" in proc.stderr
