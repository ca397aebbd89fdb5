"""The contract every stage follows.

A stage's logic is a `RecordFn`: a plain callable over one record that returns the
record (possibly changed) to keep it, or a `Rejected` to drop it. `ApplyStage`
wraps it in Beam with three outputs:

    main      kept records
    rejected  `Rejected` records
    tally     ((stage, kind, reason), count) pairs, emitted once per bundle, where
              kind is "in", "kept", "rejected" or "stat"

The tallies from every stage are summed into the manifest's counts, and the run
checks in = kept + rejected for every stage before it commits the version.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Iterable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from schemas.records import Rejected

REJECTED = "rejected"
TALLY = "tally"
PROGRESS_SECONDS = 15.0  # how often a worker logs a stage's progress

log = logging.getLogger(__name__)


class RecordFn:
    """Per-record logic of a stage. Subclasses set `stage` and implement `__call__`.

    Heavy state (tables, tokenizers, Bloom filters) is built in `setup`, which runs
    once per worker; the constructor only stores small picklable parameters.
    """

    stage: str = ""

    def setup(self) -> None:
        pass

    def __call__(self, record: Any) -> Any:
        raise NotImplementedError

    def count(self, name: str, n: int = 1) -> None:
        """Add to a stage statistic (e.g. emails replaced); it lands in the manifest."""
        self.stats[name] += n

    @property
    def stats(self) -> collections.Counter:
        if "_stats" not in self.__dict__:
            self.__dict__["_stats"] = collections.Counter()
        return self.__dict__["_stats"]


class Tally:
    """Counts one stage's records within a bundle and logs progress now and then."""

    def __init__(self, stage: str):
        self.stage = stage
        self.counts: collections.Counter = collections.Counter()
        self.total_in = 0
        self.last_log = time.monotonic()
        self.in_counter = Metrics.counter(stage, "in")
        self.kept_counter = Metrics.counter(stage, "kept")
        self.rejected_counter = Metrics.counter(stage, "rejected")

    def add_in(self, n: int = 1) -> None:
        self.counts[(self.stage, "in", "")] += n
        self.in_counter.inc(n)
        self.total_in += n
        if time.monotonic() - self.last_log > PROGRESS_SECONDS:
            self.last_log = time.monotonic()
            log.info("[%s] %d records read by this worker", self.stage, self.total_in)

    def add_kept(self, n: int = 1) -> None:
        self.counts[(self.stage, "kept", "")] += n
        self.kept_counter.inc(n)

    def add_rejected(self, reason: str) -> None:
        self.counts[(self.stage, "rejected", reason)] += 1
        self.rejected_counter.inc()

    def add_stats(self, stats: collections.Counter) -> None:
        for name, n in stats.items():
            self.counts[(self.stage, "stat", name)] += n
        stats.clear()

    def route(self, out: Any) -> Any:
        """Count one output of the stage and tag it as kept or rejected."""
        if isinstance(out, Rejected):
            self.add_rejected(out.reason)
            return pvalue.TaggedOutput(REJECTED, out)
        self.add_kept()
        return out

    def drain(self) -> Iterable[pvalue.TaggedOutput]:
        """The bundle's counts as windowed tally outputs (for `finish_bundle`)."""
        for key, n in sorted(self.counts.items()):
            yield pvalue.TaggedOutput(TALLY, WindowedValue((key, n), MIN_TIMESTAMP, [GlobalWindow()]))
        self.counts.clear()


class StageDoFn(beam.DoFn):
    """Runs a `RecordFn` on each element, routing kept/rejected and tallying both."""

    def __init__(self, fn: RecordFn):
        self.fn = fn

    def setup(self):
        self.fn.setup()
        self.tally = Tally(self.fn.stage)

    def process(self, record, **side_inputs):
        self.tally.add_in()
        out = self.fn(record, **side_inputs)
        if out is not None:
            yield self.tally.route(out)

    def finish_bundle(self):
        self.tally.add_stats(self.fn.stats)
        yield from self.tally.drain()


class ApplyStage(beam.PTransform):
    """A stage as a composite transform: kept records out, rejected and tallies tagged.

    Keyword arguments are side inputs (e.g. `beam.pvalue.AsSingleton(pcoll)`); their
    values reach the RecordFn's `__call__` as keyword arguments of the same names.
    """

    def __init__(self, fn: RecordFn, **side_inputs):
        super().__init__(label=None)
        self.fn = fn
        self.record_fn_inputs = side_inputs  # not `side_inputs`: Beam's PTransform uses that name

    def default_label(self):
        return type(self.fn).__name__

    def expand(self, records):
        return records | beam.ParDo(StageDoFn(self.fn), **self.record_fn_inputs).with_outputs(REJECTED, TALLY, main="kept")
