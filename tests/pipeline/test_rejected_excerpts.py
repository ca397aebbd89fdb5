"""Rejections carry the start of the rejected file's text (`output.rejected_excerpt_bytes`)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from schemas.config import ConfigError, OutputConfig
from schemas.records import MAX_EXCERPT_BYTES, Rejected, RepoFile, excerpt_of
from tests.conftest import SAMPLE_REPOS, run_cli


def repo_file(content: str) -> RepoFile:
    return RepoFile("f1", "local", "o/r", "a.js", None, "MIT", 3, len(content.encode()), content)


def test_excerpt_is_cut_to_whole_characters_within_the_byte_limit():
    text = "ab€cd"  # € is three bytes in UTF-8
    assert excerpt_of(text, 2) == "ab"
    assert excerpt_of(text, 3) == "ab" and excerpt_of(text, 4) == "ab"  # never half a character
    assert excerpt_of(text, 5) == "ab€"
    assert excerpt_of(text, 100) == text
    assert excerpt_of(text, 0) == "" and excerpt_of(None, 10) == ""
    assert excerpt_of("a\ud800b", 10) == "a?b"  # a lone surrogate cannot go into Parquet's UTF-8


def test_a_rejection_keeps_the_start_of_its_records_text_bounded():
    big = "x" * (10 * MAX_EXCERPT_BYTES)
    rejected = Rejected.of(repo_file(big), "filters", "long-line", "line 1 has 40960 tokens > 3000")
    assert rejected.excerpt == "x" * MAX_EXCERPT_BYTES  # a 40 kB file adds at most 4 kB to its rejection
    assert rejected.size == len(big) and rejected.path == "a.js"
    assert rejected.with_excerpt_cut(10).excerpt == "x" * 10
    assert rejected.with_excerpt_cut(0).excerpt == ""
    stub = repo_file("").replace(size=842)  # exact dedup rejects files without their content
    assert Rejected.of(stub, "dedup", "duplicate", "f0").excerpt == "" and Rejected.of(stub, "dedup", "x").size == 842


@pytest.mark.parametrize("value", [-1, MAX_EXCERPT_BYTES + 1])
def test_an_excerpt_size_out_of_range_names_the_key(value):
    with pytest.raises(ConfigError, match=r"output\.rejected_excerpt_bytes must be 0 to 4096"):
        OutputConfig(rejected_excerpt_bytes=value)


def test_the_sample_rejections_hold_excerpts_and_the_manifest_their_size(sample_version):
    version, _ = sample_version()
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["config"]["output"]["rejected_excerpt_bytes"] == OutputConfig().rejected_excerpt_bytes == 400
    rows = pq.read_table(version / "rejected").to_pylist()
    long_line = next(r for r in rows if r["reason"] == "long-line")
    assert long_line["path"] == "static/icons.min.js"
    with open(SAMPLE_REPOS + "/devtools/static/icons.min.js", encoding="utf-8") as f:
        content = f.read()
    assert long_line["excerpt"] == excerpt_of(content, 400) and len(long_line["excerpt"].encode()) == 400
    assert long_line["size"] == len(content.encode())
    assert all(len(r["excerpt"].encode()) <= 400 for r in rows)
    # every stage that rejects files with their text gives an excerpt
    with_text = {r["stage"] for r in rows if r["excerpt"]}
    assert {"license", "language", "decontamination", "filters", "near-dedup", "stackoverflow-join"} <= with_text


@pytest.mark.slow
def test_the_configured_excerpt_size_is_what_rejected_holds(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"name: small\nstages: [corpus]\nsources:\n  local:\n    - path: {SAMPLE_REPOS}\n"
        "license:\n  allow: [MIT, Apache-2.0, BSD-2-Clause, BSD-3-Clause]\noutput:\n  rejected_excerpt_bytes: 16\n"
    )
    run_cli("run", "--config", str(config), "--out", str(tmp_path / "out"))
    rows = pq.read_table(tmp_path / "out" / "small" / "v0001" / "rejected").to_pylist()
    long_line = next(r for r in rows if r["reason"] == "long-line")
    assert long_line["excerpt"] == "/*! icons v1.4.0"
    assert max(len(r["excerpt"].encode()) for r in rows) == 16
