"""The StackOverflow join's Beam graph: external sorts whose shuffles carry run paths, not posts or comments."""

from __future__ import annotations

import collections
import json
import os
import random

import apache_beam as beam
import pytest

from infra.writers import WriteSmallJson
from schemas.config import ConfigError, ScrubConfig, StackOverflowConfig
from schemas.records import Rejected
from tests.conftest import DIRECT_MODES, local_pipeline
from tests.transforms.test_stackoverflow import SAMPLE_DUMP, SAMPLE_LIMITS, SEED, join, read_dump
from transforms.formatting.buckets import boundaries_from_histogram
from transforms.stackoverflow.dump_files import find_dump_files, split_ranges
from transforms.stackoverflow.format import ScoreBuckets, format_thread, format_threads
from transforms.stackoverflow.join import SCORES, JoinThreads
from transforms.stackoverflow.source import ReadStackExchangeDump

# Rows the dump repeats with other contents (same Id and CreationDate): only a digest of the
# whole record orders them, so they show the merge order is the same whatever order the records arrive in.
DUPLICATE_POSTS = [
    '<row Id="2" PostTypeId="2" ParentId="1" CreationDate="2011-03-02T14:20:00.000" Score="4" '
    'Body="&lt;p&gt;Another body for answer 2.&lt;/p&gt;" />',
    '<row Id="40" PostTypeId="1" CreationDate="2013-01-01T00:00:00.000" Score="30" Title="Repeated title" '
    'Tags="&lt;x&gt;" Body="&lt;p&gt;Repeated question.&lt;/p&gt;" />',
]
DUPLICATE_COMMENTS = [
    '<row Id="3" PostId="2" Score="0" Text="Another text for comment 3." CreationDate="2011-03-02T14:30:00.000" />',
    '<row Id="3" PostId="2" Score="0" Text="Yet another text for comment 3." CreationDate="2011-03-02T14:30:00.000" />',
]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> list[str]:
    """The sample dump and a second site: the sample again, with repeated Ids added."""
    folder = tmp_path_factory.mktemp("dumps") / "repeats"
    folder.mkdir()
    for table, extra, close in (("Posts.xml", DUPLICATE_POSTS, "</posts>"), ("Comments.xml", DUPLICATE_COMMENTS, "</comments>")):
        text = open(os.path.join(SAMPLE_DUMP, table), encoding="utf-8").read()
        (folder / table).write_text(text.replace(close, "".join(f"  {row}\n" for row in extra) + close), encoding="utf-8")
    return [SAMPLE_DUMP, str(folder)]


def run_join(dumps: list[str], out: str, partitions: int, check_shuffles: bool = False, shuffled_bundles: int = 0) -> dict:
    """read → JoinThreads → ScoreBuckets → format, as pipeline/corpus.py wires them (in_memory); what came out, as
    JSON. With `shuffled_bundles`, the read's kept records, read here and shuffled, come from that many Creates."""
    limits = StackOverflowConfig(require_kept_answer=True, join_partitions=partitions, range_bytes=2048)
    ranges = split_ranges([f for d in dumps for f in find_dump_files(d)], limits.range_bytes)
    with local_pipeline(*DIRECT_MODES["in_memory"]) as p:
        if shuffled_bundles:
            records = [r for d in dumps for r in read_dump(d) if not isinstance(r, Rejected)]
            random.Random(0).shuffle(records)
            bundles = [p | f"Records{i}" >> beam.Create(records[i::shuffled_bundles]) for i in range(shuffled_bundles)]
            kept = tuple(bundles) | "Records" >> beam.Flatten()
        else:
            kept = (p | "Read" >> ReadStackExchangeDump(ranges, limits.max_row_bytes)).kept
        joined = kept | "Join" >> JoinThreads(limits, os.path.join(out, "_scratch"))
        buckets = joined.extras[SCORES] | "ScoreBuckets" >> ScoreBuckets()
        formatted = joined.kept | "Format" >> format_threads(SEED, buckets.boundaries)
        outputs = {
            "documents": formatted.kept | "DocumentRows" >> beam.Map(lambda d: d.to_row()),
            "rejected": joined.rejected | "JoinRejected" >> beam.Flatten() | "RejectedRows" >> beam.Map(lambda r: r.to_row()),
            "tallies": (joined.tally, formatted.tally) | beam.Flatten() | beam.CombinePerKey(sum),
            "buckets": buckets.entry,
        }
        for name, pcoll in outputs.items():
            pcoll | f"Write_{name}" >> WriteSmallJson(os.path.join(out, f"{name}.json"))
        if check_shuffles:
            check_what_crosses_shuffles(p)
    return {name: json.load(open(os.path.join(out, f"{name}.json"))) for name in outputs}


def reference(dumps: list[str]) -> dict:
    """The same join done with dicts (tests/transforms/test_stackoverflow.py's `join`), formatted."""
    threads, rejected = [], []
    for dump in dumps:  # `join` keys by post id alone: one site at a time
        site_threads, site_rejected = join([r for r in read_dump(dump) if not isinstance(r, Rejected)], SAMPLE_LIMITS)
        threads += site_threads.values()
        rejected += site_rejected
    boundaries = boundaries_from_histogram(collections.Counter(s for t in threads for s in t.scores()))
    documents = [format_thread(t, boundaries, SEED, ScrubConfig()).to_row() for t in threads]
    as_json = lambda rows: sorted(json.loads(json.dumps(rows)), key=lambda x: json.dumps(x, sort_keys=True))  # noqa: E731
    return {"documents": as_json(documents), "rejected": as_json([r.to_row() for r in rejected])}


def tally(result: dict) -> dict:
    return {tuple(key): n for key, n in result["tallies"]}


@pytest.fixture(scope="module")
def in_memory_run(dumps, tmp_path_factory) -> dict:
    """One in-memory run over more partitions than questions, whose shuffles are checked as it runs (shared by
    three tests)."""
    return run_join(dumps, str(tmp_path_factory.mktemp("in_memory")), 1000, check_shuffles=True)


@pytest.mark.slow  # a pipeline
def test_arrival_order_and_bundles_do_not_change_the_threads_documents_and_counts(dumps, in_memory_run, tmp_path):
    """The records shuffled over several bundles, as worker processes would get them, give what the read's order
    gives (the multi_processing sample build runs the join in worker processes)."""
    assert in_memory_run == run_join(dumps, str(tmp_path), 1000, shuffled_bundles=3)
    assert {k: v for k, v in in_memory_run.items() if k in ("documents", "rejected")} == reference(dumps)


@pytest.mark.slow  # a pipeline
def test_one_partition_and_more_partitions_than_questions_give_the_same_threads(dumps, in_memory_run, tmp_path):
    one, many = run_join(dumps, str(tmp_path / "one"), 1), in_memory_run
    assert one == many
    assert {k: v for k, v in one.items() if k in ("documents", "rejected")} == reference(dumps)
    counts = tally(one)
    posts_and_comments = 2 * 41 + len(DUPLICATE_POSTS) + len(DUPLICATE_COMMENTS)  # what the read keeps of both dumps
    assert counts["stackoverflow-join", "in", ""] == posts_and_comments
    rejected = sum(n for (stage, kind, _), n in counts.items() if stage == "stackoverflow-join" and kind == "rejected")
    assert counts["stackoverflow-join", "kept", ""] + rejected == posts_and_comments
    assert counts["stackoverflow-join", "rejected", "duplicate-id"] == len(DUPLICATE_POSTS) + len(DUPLICATE_COMMENTS)
    assert counts["stackoverflow-join", "stat", "threads"] == counts["stackoverflow-format", "in", ""] == 8
    assert len(one["documents"]) == 8 and one["buckets"][0]["posts"] == 2 * 17


def check_what_crosses_shuffles(p: beam.Pipeline) -> None:
    """Fail the run if a shuffle of the join carries anything but (partition, run path), or if it has a CoGroupByKey."""
    found = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            assert not isinstance(node.transform, beam.CoGroupByKey), node.full_label

        def visit_transform(self, node):
            if isinstance(node.transform, beam.GroupByKey) and node.full_label.startswith("Join/"):
                found.append(node)

    p.visit(Visitor())
    assert sorted(n.full_label for n in found) == ["Join/SortByPost/GroupRunsByShard", "Join/SortByQuestion/GroupRunsByShard"]

    def small(element, label):
        partition, path = element
        assert isinstance(partition, int) and (path is None or isinstance(path, str) and path.endswith(".spill")), label
        return element

    for node in found:
        node.inputs[0] | "Check_" + node.full_label.replace("/", "_") >> beam.Map(small, node.full_label)


@pytest.mark.slow  # the join's whole pipeline, its shuffles checked as it runs (8 s)
def test_the_join_shuffles_run_paths_not_posts_or_comments(in_memory_run):
    assert len(in_memory_run["documents"]) == 8  # the run checked every element of the join's shuffles


def test_join_partitions_must_be_positive():
    with pytest.raises(ConfigError, match=r"stackoverflow\.join_partitions must be at least 1, got 0"):
        StackOverflowConfig(join_partitions=0)
