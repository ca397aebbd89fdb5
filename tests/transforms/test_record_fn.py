"""The stage contract without Beam: RecordFns driven by `run_record_fn` (kept, rejected, extras, counts,
read = kept + rejected), and one pipeline that shows ApplyStage follows the same rules."""

from __future__ import annotations

import os

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.config import PipelineConfig
from schemas.records import Rejected, RepoFile, RepoSnapshot
from tests.conftest import SAMPLE_REPOS, local_pipeline
from transforms.base import ApplyStage
from transforms.cleaning.decontamination import DecontaminateFn
from transforms.cleaning.filters import QualityFilterFn
from transforms.cleaning.language import LanguageFn
from transforms.cleaning.license import LicenseFilterFn
from transforms.cleaning.pii.scrub import ScrubFn
from transforms.formatting.notebooks import ConvertNotebooksFn
from transforms.record_fn import Extra, Grouped, RecordFn, StageResult, outputs_of, run_record_fn
from transforms.sources.local.source import PARTS, TREES, Limits, ListRepoPartsFn, ReadRepoPartFn, list_repos, repo_snapshot

METADATA = os.path.join(SAMPLE_REPOS, "..", "repos.json")


def repo_file(file_id: str, path: str, content: str = "x = 1\n") -> RepoFile:
    return RepoFile(file_id, "local", "o/r", path, None, "MIT", 3, len(content), content)


def balanced(result: StageResult) -> bool:
    """The rule the run checks before it commits: every record read was kept or rejected."""
    counts = result.counts
    return counts["in"] == counts["kept"] + sum(counts["rejected"].values())


def test_a_per_record_stage_keeps_rejects_and_counts_each_record():
    files = [repo_file("a", "m.py"), repo_file("b", "notes.txt"), repo_file("c", "lib.rs")]
    result = run_record_fn(LanguageFn(("Python", "Rust")), files)
    assert [(f.id, f.lang) for f in result.kept] == [("a", "Python"), ("c", "Rust")]
    assert [(r.id, r.stage, r.reason) for r in result.rejected] == [("b", "language", "language")]
    assert result.counts == {
        "in": 3,
        "kept": 2,
        "rejected": {"language": 1},
        "stats": {"files:Python": 1, "files:Rust": 1},
    }
    assert balanced(result) and result.extras == {}


def read_by_the_source_fns(refs, limits: Limits = Limits(1_000_000)) -> tuple[StageResult, StageResult]:
    """The local source's two RecordFns as ReadLocalRepos chains them: list the repositories, read their parts."""
    listed = run_record_fn(ListRepoPartsFn(limits), refs)
    return listed, run_record_fn(ReadRepoPartFn(limits), listed.extras[PARTS])


def test_a_source_counts_each_record_it_yields_as_a_read_and_tags_its_snapshot():
    (ref,) = [r for r in list_repos(SAMPLE_REPOS, METADATA) if r.name == "textkit"]
    listed, read = read_by_the_source_fns([ref], Limits(1_000_000, part_bytes=2_000))
    assert len(listed.extras[PARTS]) > 1 and listed.counts["in"] == 0  # a listed repository is no read itself
    snapshot = repo_snapshot([tree for _, tree in read.extras[TREES]])
    assert isinstance(snapshot, RepoSnapshot) and snapshot.files == len(read.kept)
    assert sorted((r.path, r.reason) for r in read.rejected) == [
        ("assets/logo.png", "binary"),
        ("textkit/legacy_latin1.py", "not-utf8"),
    ]
    assert read.counts["in"] == len(read.kept) + 2 and balanced(read)  # one repository, many reads


class PairsFn(RecordFn):
    """A batched stage in miniature: a group of ids resolved at once, kept as one output that stands for them."""

    stage = "pairs"
    extra_outputs = ("sizes",)
    each_output_is_an_input = True

    def __call__(self, ids: list[str]):
        good = [i for i in ids if not i.startswith("bad")]
        yield from (Rejected(i, self.stage, "bad", "starts with bad") for i in ids if i.startswith("bad"))
        yield Extra("sizes", len(good))
        if good:
            yield Grouped(tuple(good), len(good))
            self.count("groups")


def test_a_group_kept_as_one_output_counts_every_record_it_stands_for():
    result = run_record_fn(PairsFn(), [["a", "bad-1", "b"], ["bad-2"], ["c"]])
    assert result.kept == [("a", "b"), ("c",)]
    assert [r.id for r in result.rejected] == ["bad-1", "bad-2"]
    assert result.extras == {"sizes": [2, 0, 1]}
    assert result.counts == {"in": 5, "kept": 3, "rejected": {"bad": 2}, "stats": {"groups": 2}}
    assert balanced(result)


def test_a_record_that_is_a_tuple_is_one_output():
    """Only an iterator is many outputs: a NamedTuple or a (key, value) pair a stage keeps is one record."""
    pair = (("train", 0), ("id", [1, 2]))
    assert list(outputs_of(pair)) == [pair]
    assert list(outputs_of(Extra("t", 1))) == [Extra("t", 1)]
    assert list(outputs_of(iter([pair, pair]))) == [pair, pair]
    assert list(outputs_of(None)) == []


def test_the_cleaning_stages_each_read_what_the_one_before_kept():
    """The sample's repositories through the per-file stages of the corpus, in order, without Beam."""
    config = PipelineConfig("t")
    _, read = read_by_the_source_fns(list_repos(SAMPLE_REPOS, METADATA))
    assert balanced(read) and all(r.stage == "read" for r in read.rejected)
    stages = [
        LicenseFilterFn(config.license.allow),
        LanguageFn(config.language.languages),
        ConvertNotebooksFn(),
        DecontaminateFn(config.decontamination.humaneval, config.decontamination.min_match_chars, frozenset()),
        QualityFilterFn(config.filters),
        ScrubFn(config.scrub),
    ]
    records = read.kept
    for fn in stages:
        result = run_record_fn(fn, records)
        assert balanced(result), fn.stage
        assert all(r.stage == fn.stage for r in result.rejected)
        assert result.counts["in"] == len(records)
        records = result.kept
    assert records and all(isinstance(r, RepoFile) for r in records)


@pytest.mark.slow  # a Beam pipeline
def test_apply_stage_routes_and_counts_as_the_harness_does():
    files = [repo_file("a", "m.py"), repo_file("b", "notes.txt"), repo_file("c", "lib.rs"), repo_file("d", "x.py")]
    fn = LanguageFn(("Python", "Rust"))
    expected = run_record_fn(fn, files)
    tally = [(("language", "in", ""), 4), (("language", "kept", ""), 3), (("language", "rejected", "language"), 1)]
    tally += [(("language", "stat", "files:Python"), 2), (("language", "stat", "files:Rust"), 1)]
    with local_pipeline() as p:
        out = p | beam.Create(files) | ApplyStage(LanguageFn(("Python", "Rust")))
        assert_that(out.kept, equal_to(expected.kept), label="Kept")
        assert_that(out.rejected | beam.Flatten(), equal_to(expected.rejected), label="Rejected")
        assert_that(out.tally | beam.CombinePerKey(sum), equal_to(tally), label="Tally")
    assert expected.counts == {"in": 4, "kept": 3, "rejected": {"language": 1}, "stats": {"files:Python": 2, "files:Rust": 1}}
