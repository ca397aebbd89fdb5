"""The StackOverflow join as two external sorts on scratch storage: only run paths cross a shuffle.

    link pass, by (site, post id):
      posts ──── post id → question id ──┐                                   ┌ Rejected (missing-parent)
                                         ├ SortIntoShards ─ LinkComments ───┤
      comments ─ post id → comment ──────┘                                   └ question id → comment ──┐
    thread pass, by (site, question id):                                                               │
      posts ──── question id → post ─────┬ SortIntoShards ─ SelectThreads ──┬ Rejected                │
                 question id → comment ──┘ ◄─────────────────────────────────┼─────────────────────────┘
                                                                             ├ Threads → one spill file per partition
                                                                             │   (its path is the stage's kept output)
                                                                             └ scores of kept questions and answers
                                                                                 (what the dscore buckets are over)

SortIntoShards writes the items as sorted runs on scratch storage; only (partition, run
paths) cross its shuffle.

Each pass partitions its records by a stable hash of the group key into
`stackoverflow.join_partitions` partitions; bundles write sorted runs per partition
(`infra.writers.SortIntoShards`) and one worker per partition merges them
(`infra.writers.merged_groups`) and walks the groups of equal key in order. Posts sort
before comments in a group, and the rest of a sort key (ids, then a digest of the whole
record) tells every two different records apart, so the merge order, and with it every
output, is the same in every runner mode. A worker holds one group (one question's posts
and comments), a frame of each run it merges and the runs its bundle has not yet spilled.

The format stage then streams each thread spill file with the buckets as a side input
(`transforms.stackoverflow.format.format_threads`): threads wait for the buckets on
storage, not in the runner.

Accounting (stage "stackoverflow-join", summed over bundles as every stage's tallies are):
the link pass reads the comments it rejects; the select pass reads the posts and the
linked comments, and keeps or rejects each (`select_thread`).
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Iterator

import apache_beam as beam

from infra.runtime import configure_worker
from infra.spill import BundleSpill
from infra.writers import SortIntoShards, merged_groups, shard_of
from schemas import stage_names
from schemas.config import StackOverflowConfig
from schemas.records import Rejected, StackComment, StackPost
from transforms.base import ApplyStage
from transforms.record_fn import Extra, Grouped, RecordFn
from transforms.stackoverflow.selection import link_comments, select_thread
from transforms.stage_outputs import StageOutputs

POST, COMMENT = 0, 1  # the kind in a sort key: a group's posts come before its comments
LINKED = "linked"  # comments keyed by their question, from the link pass to the select pass
SCORES = "scores"  # the select pass's scores of kept questions and answers
THREADS_SPILL = "so-threads"


def digest(record) -> bytes:
    """Tells apart two records that share their ids (a dump that repeats an Id), so merges are deterministic."""
    return hashlib.blake2b(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL), digest_size=12).digest()


def link_key_of_post(post: StackPost) -> tuple[tuple, int]:
    """(site, post id, POST, question id) → the question id: all the link pass needs of a post."""
    return (post.site, post.post_id, POST, post.question_id, b""), post.question_id


def link_key_of_comment(comment: StackComment) -> tuple[tuple, StackComment]:
    return (comment.site, comment.post_id, COMMENT, comment.comment_id, digest(comment)), comment


def thread_key_of_post(post: StackPost) -> tuple[tuple, StackPost]:
    return (post.site, post.question_id, POST, post.post_id, digest(post)), post


HELD_ITEM_BYTES = 160  # a held item's sort key and tuples in a run writer (measured: 150-260)
RECORD_BYTES = 400  # a post or comment object and its strings' headers, besides their text


def stored_bytes(stored) -> int:
    """About the memory a run writer holds for an item: what keeps its budget (RUN_BYTES) honest.

    Link stubs carry no text, so their fixed cost must count, or a writer would hold
    hundreds of thousands of them before it spills.
    """
    if isinstance(stored, StackPost):
        return HELD_ITEM_BYTES + RECORD_BYTES + len(stored.body) + len(stored.title)
    if isinstance(stored, StackComment):
        return HELD_ITEM_BYTES + RECORD_BYTES + len(stored.text)
    return HELD_ITEM_BYTES


def partitioned(partitions: int):
    """placements for SortIntoShards over (sort key, item) pairs: the partition is a hash of (site, id)."""

    def placements(keyed: tuple) -> tuple[tuple[int, tuple, object]]:
        key, stored = keyed
        return ((shard_of(f"{key[0]}/{key[1]}", partitions), key, stored),)

    return placements


def groups(paths: list[str]) -> Iterator[tuple[tuple, list, list]]:
    """A partition's merged runs → (site, id), [posts' items], [(sort key, comment)] per group, in key order."""
    for group_key, items in merged_groups(paths, lambda key: key[:2]):
        posts, comments = [], []
        for key, stored in items:
            if key[2] == POST:
                posts.append(stored)
            else:
                comments.append((key, stored))
        yield group_key, posts, comments


class LinkCommentsFn(RecordFn):
    """(partition, run paths) → each comment keyed by its question (LINKED), or rejected `missing-parent`.

    Only the rejected comments are read here; the linked ones are read by the select pass.
    """

    stage = stage_names.STACKOVERFLOW_JOIN
    extra_outputs = (LINKED,)
    each_output_is_an_input = True

    def setup(self):
        configure_worker()

    def __call__(self, partition_runs):
        _, paths = partition_runs
        for (site, _), questions, keyed_comments in groups(paths):
            links = link_comments(questions, [comment for _, comment in keyed_comments])  # one out per comment, in order
            for (key, _), out in zip(keyed_comments, links):
                if isinstance(out, Rejected):
                    yield out
                else:  # the record's digest is kept from the link key, not computed again
                    question_id, comment = out
                    yield Extra(LINKED, ((site, question_id, COMMENT, comment.comment_id, key[4]), comment))


class SelectThreadsFn(RecordFn):
    """(partition, run paths) → its kept Threads written to one spill file, whose path is kept as
    the records the threads hold; each post and linked comment read is kept or rejected.

    Also gives the SCORES of kept questions and answers, and the `threads` stat.
    """

    stage = stage_names.STACKOVERFLOW_JOIN
    extra_outputs = (SCORES,)
    each_output_is_an_input = True

    def __init__(self, limits: StackOverflowConfig, scratch_dir: str):
        self.limits = limits
        self.scratch_dir = scratch_dir

    def setup(self):
        configure_worker()

    def __call__(self, partition_runs):
        _, paths = partition_runs
        spill, kept = BundleSpill(self.scratch_dir, THREADS_SPILL), 0
        for _, posts, keyed_comments in groups(paths):
            selection = select_thread(posts, [comment for _, comment in keyed_comments], self.limits)
            yield from selection.rejected
            if selection.thread is None:
                continue
            kept += selection.kept
            self.count("threads")
            spill.write(selection.thread)
            for score in selection.thread.scores():
                yield Extra(SCORES, score)
        path = spill.close()
        if path is not None:
            yield Grouped(path, kept)


class JoinThreads(beam.PTransform):
    """StackPost and StackComment records → spill files of Threads, Rejected and tallies of stage stackoverflow-join.

    `scratch_dir` holds the runs and the thread spill files (the caller removes it after the run).
    Its outputs' `kept` are the paths of the spill files, one per partition with a kept thread;
    `extras[SCORES]` one score per kept question and answer, what the dscore buckets are over.
    """

    stage = stage_names.STACKOVERFLOW_JOIN

    def __init__(self, limits: StackOverflowConfig, scratch_dir: str):
        super().__init__()
        self.limits = limits
        self.scratch_dir = scratch_dir

    def expand(self, records) -> StageOutputs:
        posts = records | "Posts" >> beam.Filter(lambda r: isinstance(r, StackPost))
        comments = records | "Comments" >> beam.Filter(lambda r: isinstance(r, StackComment))
        sort = partitioned(self.limits.join_partitions)
        linked = (
            (
                posts | "KeyPostToQuestion" >> beam.Map(link_key_of_post),
                comments | "KeyCommentToPost" >> beam.Map(link_key_of_comment),
            )
            | "SortByPost" >> SortIntoShards(self.scratch_dir, sort, stored_bytes)
            | "LinkComments" >> ApplyStage(LinkCommentsFn())
        )
        selected = (
            (posts | "KeyPostToThread" >> beam.Map(thread_key_of_post), linked.extras[LINKED])
            | "SortByQuestion" >> SortIntoShards(self.scratch_dir, sort, stored_bytes)
            | "SelectThreads" >> ApplyStage(SelectThreadsFn(self.limits, self.scratch_dir))
        )
        return StageOutputs(
            kept=selected.kept,
            rejected=linked.rejected + selected.rejected,  # of the link and the select pass
            tally=(linked.tally, selected.tally) | "JoinTallies" >> beam.Flatten(),
            extras={SCORES: selected.extras[SCORES]},
        )
