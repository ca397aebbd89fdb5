"""The StackOverflow join as a composite on a few literal posts and comments: its StageOutputs in a TestPipeline."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from infra.spill import read_spill
from schemas import stage_names
from schemas.config import StackOverflowConfig
from tests.conftest import local_pipeline
from tests.transforms.test_stackoverflow import comment, post
from transforms.stackoverflow.join import SCORES, JoinThreads


def thread_shape(thread) -> tuple:
    """(question id, its comment ids, [(answer id, its comment ids)]): what a thread holds, by ids."""
    answers = [(a.post_id, [c.comment_id for c in cs]) for a, cs in thread.answers]
    return thread.question.post_id, [c.comment_id for c in thread.comments], answers


@pytest.mark.slow  # a Beam pipeline
def test_the_join_keeps_threads_in_spill_files_and_rejects_the_rest_with_their_reasons(tmp_path):
    records = [
        post(1, 5, "2020-01-01", parent=None),  # a question with one good answer: a thread
        post(2, 3, "2020-01-02"),
        post(3, -1, "2020-01-03"),  # below min_answer_score
        post(4, 2, "2020-01-04", parent=None),  # no answer at all
        comment(100, 1, "2020-02-01"),  # on the question: kept
        comment(101, 3, "2020-02-02"),  # on the rejected answer
        comment(102, 99, "2020-02-03"),  # on a post that is not in the dump
    ]
    limits = StackOverflowConfig(join_partitions=2)
    with local_pipeline() as p:
        out = p | beam.Create(records) | JoinThreads(limits, str(tmp_path / "scratch"))
        threads = out.kept | "ReadSpills" >> beam.FlatMap(read_spill) | "Shape" >> beam.Map(thread_shape)
        assert_that(threads, equal_to([(1, [100], [(2, [])])]), label="Threads")
        rejected = out.rejected | beam.Flatten() | "Reasons" >> beam.Map(lambda r: (r.stage, r.detail.split(":")[0], r.reason))
        expected = [
            (stage_names.STACKOVERFLOW_JOIN, "post 3", "low-score"),
            (stage_names.STACKOVERFLOW_JOIN, "post 4", "unanswered"),
            (stage_names.STACKOVERFLOW_JOIN, "comment 101", "parent-not-selected"),
            (stage_names.STACKOVERFLOW_JOIN, "comment 102", "missing-parent"),
        ]
        assert_that(rejected, equal_to(expected), label="Rejected")
        assert_that(out.extras[SCORES], equal_to([5, 3]), label="Scores")
        tally = [
            ((stage_names.STACKOVERFLOW_JOIN, "in", ""), 7),
            ((stage_names.STACKOVERFLOW_JOIN, "kept", ""), 3),
            ((stage_names.STACKOVERFLOW_JOIN, "rejected", "low-score"), 1),
            ((stage_names.STACKOVERFLOW_JOIN, "rejected", "missing-parent"), 1),
            ((stage_names.STACKOVERFLOW_JOIN, "rejected", "parent-not-selected"), 1),
            ((stage_names.STACKOVERFLOW_JOIN, "rejected", "unanswered"), 1),
            ((stage_names.STACKOVERFLOW_JOIN, "stat", "threads"), 1),
        ]
        assert_that(out.tally | beam.CombinePerKey(sum), equal_to(tally), label="Tally")
