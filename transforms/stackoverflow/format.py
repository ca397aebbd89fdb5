"""StackOverflow threads → Documents in Figure 6c's markup, with score buckets (stage "stackoverflow-format").

Titles, bodies and comments are scrubbed as code files are (`transforms.cleaning.pii.scrub`: emails,
secrets, IP addresses) before they are marked up; the stage's stats count each
replacement kind (`replaced-email`, ...) and the documents changed.
"""

from __future__ import annotations

import collections
from typing import NamedTuple, Sequence

import apache_beam as beam

from infra.runtime import configure_worker
from infra.spill import read_spill
from schemas import stage_names
from schemas.config import ScrubConfig
from schemas.records import Document, StackPost, record_rng
from transforms.base import ApplyStage
from transforms.cleaning.pii.scrub import count_replacements, scrub_text
from transforms.formatting import markup
from transforms.formatting.buckets import HistogramFn, bucket_of, entry_boundaries, entry_of_histogram
from transforms.record_fn import RecordFn
from transforms.stackoverflow.html_text import body_text
from transforms.stackoverflow.selection import Thread
from transforms.stackoverflow.source import SOURCE

KIND = "stackoverflow"


def question_text(question: StackPost) -> str:
    body = body_text(question.body)
    return f"{question.title.strip()}\n\n{body}" if body else question.title.strip()


def format_thread(
    thread: Thread,
    boundaries: Sequence[float],
    seed: int,
    scrub: ScrubConfig | None = None,
    replaced: collections.Counter | None = None,
) -> Document:
    """A Thread → its Document, marked up as in Figure 6c (see the module docstring).

    With `scrub`, every title, body and comment is scrubbed first; `replaced` (when given)
    adds up the replacements per kind.
    """

    def clean(text: str) -> str:
        if scrub is None:
            return text
        text, found = scrub_text(text, scrub)
        if replaced is not None:
            replaced.update(found)
        return text

    q = thread.question
    rng = record_rng(seed, q.site, str(q.post_id))
    tags = [("tags", ",".join(q.tags))] if q.tags else []
    q_bucket = bucket_of(q.score, boundaries)
    parts = [markup.wrap_random("q", clean(question_text(q)), tags + [("dscore", q_bucket)], rng)]
    parts += [markup.wrap_random("c", clean(c.text.strip()), [], rng) for c in thread.comments]
    for answer, comments in thread.answers:
        attrs = tags + [("dscore", bucket_of(answer.score, boundaries))]
        parts.append(markup.wrap_random("a", clean(body_text(answer.body)), attrs, rng))
        parts += [markup.wrap_random("c", clean(c.text.strip()), [], rng) for c in comments]
    meta = {
        "answers": len(thread.answers),
        "comments": len(thread.comments) + sum(len(cs) for _, cs in thread.answers),
        "dscore": q_bucket,
        "question_id": q.post_id,
        "score": q.score,
        "site": q.site,
    }
    return Document(
        id=q.id,
        kind=KIND,
        text="\n".join(parts) + "\n",
        source=SOURCE,
        tags=q.tags,
        meta=tuple((k, str(v)) for k, v in sorted(meta.items())),
    )


class FormatThreadFn(RecordFn):
    """Thread → scrubbed Document; the score bucket boundaries arrive as the `score_boundaries` side input."""

    stage = stage_names.STACKOVERFLOW_FORMAT

    def __init__(self, seed: int, scrub: ScrubConfig = ScrubConfig()):
        self.seed = seed
        self.scrub = scrub

    def __call__(self, thread: Thread, *, score_boundaries: Sequence[float]) -> Document:
        replaced: collections.Counter = collections.Counter()
        document = format_thread(thread, score_boundaries, self.seed, self.scrub, replaced)
        if replaced:
            count_replacements(self, replaced)
            self.count("documents-changed")
        return document


class FormatSpilledThreadsFn(FormatThreadFn):
    """A spill file of Threads (the join's output, one per partition) → their Documents, streamed.

    Each thread counts as one read, so the stage reads as many as the join's `threads` stat.
    """

    each_output_is_an_input = True

    def setup(self):
        configure_worker()

    def __call__(self, path: str, *, score_boundaries: Sequence[float]):
        for thread in read_spill(path):
            yield super().__call__(thread, score_boundaries=score_boundaries)


class BucketOutputs(NamedTuple):
    boundaries: beam.PCollection  # one element: the five dscore boundaries
    entry: beam.PCollection  # one element: the manifest's `score_buckets` entry


class ScoreBuckets(beam.PTransform):
    """The scores of every kept question and answer (the join's `scores`) → the dscore boundaries.

    The join outputs the scores beside the thread spill files, so no Thread waits in the
    runner for the buckets: the threads wait on storage.
    """

    def expand(self, scores):
        histogram = scores | "Histogram" >> beam.CombineGlobally(HistogramFn())
        entry = histogram | "ManifestEntry" >> beam.Map(entry_of_histogram, "posts")
        boundaries = entry | "PickBoundaries" >> beam.Map(entry_boundaries)
        return BucketOutputs(boundaries, entry)


def format_threads(seed: int, score_boundaries: beam.PCollection, scrub: ScrubConfig = ScrubConfig()) -> ApplyStage:
    """The format stage over thread spill files, with the single-element boundaries PCollection as its side input."""
    return ApplyStage(FormatSpilledThreadsFn(seed, scrub), score_boundaries=beam.pvalue.AsSingleton(score_boundaries))
