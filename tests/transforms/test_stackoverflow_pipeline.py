"""The StackOverflow part of the corpus graph, run by the CLI (in_memory; the multi_processing sample build runs
it in worker processes)."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.corpus import stackoverflow_ranges
from schemas.config import ConfigError, load_config
from tests.conftest import DIRECT_MODES, run_cli
from tests.transforms.test_stackoverflow import (
    BOUNDARIES,
    EXPECTED_REJECTED,
    EXPECTED_TEXT,
    SAMPLE_DUMP,
    SEED,
    make_archive,
)

pytestmark = pytest.mark.slow  # runs the pipeline on dumps


def write_config(tmp_path, dumps: list[str], **sections) -> str:
    config = {"name": "so", "seed": SEED, "stages": ["corpus"], "sources": {"stackoverflow": dumps}, **sections}
    path = tmp_path / "so.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def broken_archive(tmp_path) -> str:
    """A site archive cut in half: its header (at the end) is gone."""
    whole = tmp_path / "whole.7z"
    make_archive(whole, {t: os.path.join(SAMPLE_DUMP, t) for t in ("Posts.xml", "Comments.xml")})
    broken = tmp_path / "broken.7z"
    broken.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return str(broken)


def test_pipeline_writes_the_expected_documents_and_accounts_for_every_row(tmp_path):
    limits = {"range_bytes": 1024, "require_kept_answer": True}  # as examples/sample.yaml
    config = write_config(tmp_path, [SAMPLE_DUMP, broken_archive(tmp_path)], stackoverflow=limits)
    run_cli("run", "--config", config, "--out", str(tmp_path / "out"), *DIRECT_MODES["in_memory"])
    version = tmp_path / "out" / "so" / "v0001"
    manifest = json.loads((version / "manifest.json").read_text())

    documents = pq.read_table(version / "documents").to_pylist()
    by_question = {int(dict(d["meta"])["question_id"]): d for d in documents}
    assert {q: d["text"] for q, d in by_question.items()} == EXPECTED_TEXT
    assert by_question[1]["tags"] == ["python", "django"] and by_question[60]["tags"] == ["c++", "pointers"]
    assert dict(by_question[10]["meta"]) == {
        "answers": "10",
        "comments": "6",
        "dscore": "3",
        "question_id": "10",
        "score": "25",
        "site": "stackoverflow",
    }
    assert manifest["score_buckets"]["boundaries"] == BOUNDARIES and manifest["score_buckets"]["posts"] == 17

    counts = manifest["counts"]
    assert manifest["flow"] == [["stackoverflow-read", "stackoverflow-join"], ["stackoverflow-format"]]
    assert counts["stackoverflow-read"]["in"] == 46 + 2  # the sample's rows, and one per table of the broken archive
    assert counts["stackoverflow-read"]["rejected"] == {"deleted": 2, "malformed-row": 1, "post-type": 2, "unreadable-file": 2}
    assert counts["stackoverflow-join"]["in"] == counts["stackoverflow-read"]["kept"] == 41
    assert counts["stackoverflow-join"]["kept"] == 26  # posts and comments inside the four threads
    assert counts["stackoverflow-join"]["stats"] == {"threads": 4}
    assert counts["stackoverflow-format"] == {"in": 4, "kept": 4, "rejected": {}, "stats": {}}

    rejected = pq.read_table(version / "rejected").to_pylist()
    unreadable = [r for r in rejected if r["reason"] == "unreadable-file"]
    assert sorted(r["path"] for r in unreadable) == ["Comments.xml", "Posts.xml"] and {r["repo"] for r in unreadable} == {
        "broken"
    }
    sample = [r for r in rejected if r["repo"] == "stackoverflow"]
    assert len(sample) == len(EXPECTED_REJECTED)
    assert sorted((r["path"], r["stage"], r["reason"]) for r in sample) == sorted(
        (table, stage, reason) for (table, _), (stage, reason) in EXPECTED_REJECTED.items()
    )


def test_bad_stackoverflow_config_fails_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"sources\.stackoverflow\[1\]: .*nowhere.* has no Posts\.xml"):
        stackoverflow_ranges(load_config(write_config(tmp_path, [SAMPLE_DUMP, str(tmp_path / "nowhere")])))
    with pytest.raises(ConfigError, match=r"sources\.stackoverflow\[1\]: site 'stackoverflow' is already"):
        stackoverflow_ranges(load_config(write_config(tmp_path, [SAMPLE_DUMP, SAMPLE_DUMP])))
    with pytest.raises(ConfigError, match=r"stackoverflow\.max_answers must be at least 1"):
        load_config(write_config(tmp_path, [SAMPLE_DUMP], stackoverflow={"max_answers": 0}))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['max_answer'\]"):
        load_config(write_config(tmp_path, [SAMPLE_DUMP], stackoverflow={"max_answer": 3}))
