"""Exact dedup: the key of footnote 6, survivor choice in Beam, and the version's Bloom filter."""

from __future__ import annotations

import hashlib
import io
import os
import re

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given
from hypothesis import strategies as st
from pybloom_live import BloomFilter

from infra.writers import read_json, write_json
from schemas.config import ConfigError
from schemas.records import RepoFile
from tests.conftest import SAMPLE_REPOS, combine_in_bundles, local_pipeline
from transforms.dedup.exact import (
    BLOOM_FILE,
    KEYS,
    BloomCombineFn,
    ExactDedup,
    ResolveDuplicatesFn,
    SpilledFile,
    read_bloom,
    write_bloom,
)
from transforms.dedup.exact_keys import dedup_key
from transforms.dedup.tokens import alnum_tokens, joined_tokens
from transforms.record_fn import run_record_fn


def sample(path: str) -> str:
    with open(os.path.join(SAMPLE_REPOS, path), encoding="utf-8") as f:
        return f.read()


def make(file_id: str, content: str, stars: int | None, path: str = "m.py", repo: str = "o/r") -> RepoFile:
    return RepoFile(file_id, "local", repo, path, None, "MIT", stars, len(content), content)


def test_key_is_extension_token_count_and_md5_of_tokens():
    text = "def f(x):\n    return x + 1  # one\n"
    tokens = re.findall(r"\w+", text)
    assert dedup_key("pkg/f.py", text) == f".py\t{len(tokens)}\t{hashlib.md5(' '.join(tokens).encode()).hexdigest()}"
    assert dedup_key("a.py", "x=1") == dedup_key("b.py", "x = 1\n")  # punctuation and spacing do not count
    assert dedup_key("a.py", "x = 1") != dedup_key("a.js", "x = 1")  # the extension does
    assert dedup_key("a.py", "x = 1 # a") != dedup_key("a.py", "x = 1 # b")  # comments are tokens


def test_sample_whitespace_variant_has_the_same_key():
    original = sample("textkit/textkit/strings.py")
    assert sample("mathlib/mathlib/text_utils.py") != original
    assert dedup_key("strings.py", original) == dedup_key("text_utils.py", sample("mathlib/mathlib/text_utils.py"))
    assert dedup_key("strings.py", original) == dedup_key("strings.py", sample("webapp/vendor/strings.py"))


@given(st.text())
def test_ascii_fast_path_agrees_with_the_regex(text):
    tokens = re.findall(r"\w+", text)
    expected = f".py\t{len(tokens)}\t{hashlib.md5(' '.join(tokens).encode()).hexdigest()}"
    assert dedup_key("a.py", text) == expected


def test_joined_tokens_are_split_and_join_on_real_code():
    """The numpy join gives what splitting into one bytes object per token and joining gives, on the modules of
    two installed packages (non-ASCII names and strings among them) and on edge cases."""
    import email
    import json as json_package

    paths = [
        os.path.join(os.path.dirname(m.__file__), n)
        for m in (email, json_package)
        for n in os.listdir(os.path.dirname(m.__file__))
    ]
    texts = [open(p, encoding="utf-8", errors="surrogateescape").read() for p in sorted(paths) if p.endswith(".py")]
    texts += ["", " ", "  \n\t", "x", " x", "x ", "é", "ab  cd", "  ab  cd  e  "]
    assert len(texts) > 30
    for text in texts:
        tokens = alnum_tokens(text)
        assert joined_tokens(tokens) == (len(tokens.split()), b" ".join(tokens.split()))


def run_dedup(tmp_path, files, previous=(), capacity=1000):
    """Run ExactDedup on a real Beam pipeline: yields its outputs, then (manifest entry, version dir)."""
    out_dir = str(tmp_path / "v")
    with local_pipeline() as p:
        result = p | beam.Create(files) | ExactDedup(str(tmp_path / "scratch"), out_dir, capacity, 0.01, tuple(previous))
        result.manifest["dedup"] | beam.Map(lambda entry: write_json(os.path.join(out_dir, "dedup.json"), entry))
        # The caller adds its assert_that checks to these before the pipeline runs.
        yield {
            "kept": result.kept | "KeptIds" >> beam.Map(lambda f: f.id),
            "rejected": result.rejected | beam.Flatten() | "RejectedIds" >> beam.Map(lambda r: (r.id, r.reason, r.detail)),
            "tally": result.tally | "SumTally" >> beam.CombinePerKey(sum),
        }
    entry = read_json(os.path.join(out_dir, "dedup.json"))
    yield entry, out_dir


@pytest.mark.slow
def test_survivor_is_most_starred_then_smallest_id(tmp_path):
    text = sample("textkit/textkit/strings.py")
    files = [
        make("c-webapp", sample("webapp/vendor/strings.py"), 14),
        make("b-textkit", text, 120),
        make("z-mathlib", sample("mathlib/mathlib/text_utils.py"), 5400),
        make("tie-2", "x = 2\n", 7),
        make("tie-1", "x = 2\n", 7),
        make("unknown-stars", "x = 2\n", None),
        make("alone", "y = 3\n", 0),
    ]
    run = run_dedup(tmp_path, files)
    outputs = next(run)
    assert_that(outputs["kept"], equal_to(["z-mathlib", "tie-1", "alone"]), label="Kept")
    assert_that(
        outputs["rejected"],
        equal_to(
            [
                ("c-webapp", "duplicate", "z-mathlib"),
                ("b-textkit", "duplicate", "z-mathlib"),
                ("tie-2", "duplicate", "tie-1"),
                ("unknown-stars", "duplicate", "tie-1"),
            ]
        ),
        label="Rejected",
    )
    assert_that(
        outputs["tally"],
        equal_to([(("dedup", "in", ""), 7), (("dedup", "kept", ""), 3), (("dedup", "rejected", "duplicate"), 4)]),
        label="Tally",
    )
    entry, out_dir = next(run)
    assert entry == {"bloom_file": BLOOM_FILE, "capacity": 1000, "error_rate": 0.01, "keys": 3, "previous_versions": []}
    bloom = read_bloom(os.path.join(out_dir, BLOOM_FILE))
    assert len(bloom) == 3 and all(dedup_key(f.path, f.content) in bloom for f in files)


def earlier_version(root, *contents: str) -> str:
    """A version directory holding the Bloom filter of `contents`' keys (as written by ExactDedup), built without Beam."""
    version = str(root / "one" / "v")
    write_bloom(combine([dedup_key("m.py", c) for c in contents], 1, 1000, 0.01), version)
    return version


def test_previous_version_filter_rejects_known_keys(tmp_path):
    """ResolveDuplicatesFn on its groups of one key: a key in the earlier version's filter rejects every copy, and
    every key, known or new, goes on to this version's filter (so naming the latest version is enough)."""
    first_dir = earlier_version(tmp_path, "x = 1\n", "y = 2\n")
    groups = [
        (dedup_key(f.path, f.content), [SpilledFile("s", i, f.replace(content="")).shuffled()])
        for i, f in enumerate([make("c", "x  =  1\n", 9), make("d", "z = 3\n", 1)])
    ]
    result = run_record_fn(ResolveDuplicatesFn((first_dir,)), groups)
    assert [spilled.stub.id for spilled in result.kept] == ["d"]
    assert [(r.id, r.reason, r.detail) for r in result.rejected] == [("c", "dedup-previous-version", "key is in one/v")]
    assert result.extras[KEYS] == [key for key, _ in groups] and dedup_key("m.py", "x = 1") == groups[0][0]
    assert result.counts == {"in": 2, "kept": 1, "rejected": {"dedup-previous-version": 1}, "stats": {}}


def combine(keys, bundles: int, capacity: int, error_rate: float) -> tuple[bytes, int]:
    return combine_in_bundles(BloomCombineFn(capacity, error_rate), keys, bundles)


def synthetic_keys(start: int, n: int) -> list[str]:
    """Keys in the dedup format for distinct synthetic token sequences."""
    return [dedup_key("k.py", f"token_{i} value_{i * 7}") for i in range(start, start + n)]


def test_bloom_false_positive_rate_is_within_twice_the_configured_rate():
    capacity, error_rate = 20_000, 0.01
    stored, held_out = synthetic_keys(0, capacity), synthetic_keys(capacity, 50_000)
    serialized, count = combine(stored, bundles=4, capacity=capacity, error_rate=error_rate)
    bloom = BloomFilter.fromfile(io.BytesIO(serialized))
    assert count == len(bloom) == capacity and bloom.error_rate == error_rate
    assert all(key in bloom for key in stored)  # no false negatives
    measured = sum(key in bloom for key in held_out) / len(held_out)
    assert measured <= 2 * error_rate, measured
    assert measured > 0  # the filter is at capacity, so some false positives are expected


def test_bloom_bytes_do_not_depend_on_bundling():
    keys = synthetic_keys(0, 500)
    assert combine(keys, 1, 1000, 0.001) == combine(keys, 7, 1000, 0.001)


def test_bloom_over_capacity_names_the_config_key():
    with pytest.raises(ConfigError, match="dedup.bloom_capacity"):
        combine(synthetic_keys(0, 11), 1, 10, 0.01)
    with pytest.raises(ConfigError, match="dedup.bloom_capacity"):
        combine(synthetic_keys(0, 11), 3, 10, 0.01)
