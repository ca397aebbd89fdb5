"""The Beam adapter of the stage contract (`transforms.record_fn`).

`ApplyStage` runs a `RecordFn` as a `ParDo` and returns its `StageOutputs`:

    kept      kept records
    rejected  `Rejected` records
    tally     ((stage, kind, reason), count) pairs, emitted once per bundle, where
              kind is "in", "kept", "rejected" or "stat"
    extras    one per name in the fn's `extra_outputs`, from the `Extra`s it returns

The tallies from every stage are summed into the manifest's counts, and the run
checks in = kept + rejected for every stage before it commits the version.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from infra.runtime import configure_worker
from transforms.record_fn import KEPT, REJECTED, RecordFn, StageCounts, outputs_of
from transforms.stage_outputs import StageOutputs

TALLY = "tally"
PROGRESS_SECONDS = 15.0  # how often a worker logs a stage's progress

log = logging.getLogger(__name__)


class Tally(StageCounts):
    """Counts one stage's records within a bundle, as Beam metrics too, and logs progress now and then."""

    def __init__(self, stage: str):
        super().__init__(stage)
        self.total_in = 0
        self.last_log = time.monotonic()
        self.in_counter = Metrics.counter(stage, "in")
        self.kept_counter = Metrics.counter(stage, "kept")
        self.rejected_counter = Metrics.counter(stage, "rejected")

    def add_in(self, n: int = 1) -> None:
        super().add_in(n)
        self.in_counter.inc(n)
        self.total_in += n
        if time.monotonic() - self.last_log > PROGRESS_SECONDS:
            self.last_log = time.monotonic()
            log.info("[%s] %d records read by this worker", self.stage, self.total_in)

    def add_kept(self, n: int = 1) -> None:
        super().add_kept(n)
        self.kept_counter.inc(n)

    def add_rejected(self, reason: str) -> None:
        super().add_rejected(reason)
        self.rejected_counter.inc()

    def drain(self) -> Iterable[pvalue.TaggedOutput]:
        """The bundle's counts as windowed tally outputs (for `finish_bundle`)."""
        for key, n in sorted(self.counts.items()):
            yield in_global_window(pvalue.TaggedOutput(TALLY, (key, n)))
        self.counts.clear()


class StageDoFn(beam.DoFn):
    """Runs a `RecordFn` on each element, routing kept/rejected and tallying both."""

    def __init__(self, fn: RecordFn):
        self.fn = fn

    def setup(self):
        configure_worker()  # sources and stages read and write the store on workers
        self.fn.setup()
        self.tally = Tally(self.fn.stage)

    def process(self, record, **side_inputs):
        if not self.fn.each_output_is_an_input:
            self.tally.add_in()
        yield from self._route(self.fn(record, **side_inputs))

    def finish_bundle(self):
        for out in self._route(self.fn.finish_bundle()):
            yield in_global_window(out)
        self.tally.add_stats(self.fn.stats)
        yield from self.tally.drain()

    def teardown(self):
        self.fn.teardown()

    def _route(self, out):
        for item in outputs_of(out):
            tag, value = self.tally.route(item, self.fn.each_output_is_an_input)
            yield value if tag == KEPT else pvalue.TaggedOutput(tag, value)


def in_global_window(out):
    """An output of `finish_bundle`, which Beam needs windowed (every stage runs in the global window)."""
    if isinstance(out, pvalue.TaggedOutput):
        return pvalue.TaggedOutput(out.tag, in_global_window(out.value))
    return out if isinstance(out, WindowedValue) else WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])


class ApplyStage(beam.PTransform):
    """A stage as a composite transform: its kept records, rejected records, tallies and extras.

    Keyword arguments are side inputs (e.g. `beam.pvalue.AsSingleton(pcoll)`); their
    values reach the RecordFn's `__call__` as keyword arguments of the same names.
    """

    def __init__(self, fn: RecordFn, **side_inputs):
        super().__init__(label=None)
        self.fn = fn
        self.record_fn_inputs = side_inputs  # not `side_inputs`: Beam's PTransform uses that name

    @property
    def stage(self) -> str:
        return self.fn.stage

    def default_label(self):
        return type(self.fn).__name__

    def expand(self, records) -> StageOutputs:
        stage = beam.ParDo(StageDoFn(self.fn), **self.record_fn_inputs).with_output_types(Any)  # not inferred from bytecode
        out = records | stage.with_outputs(REJECTED, TALLY, *self.fn.extra_outputs, main=KEPT)
        return StageOutputs(out[KEPT], (out[REJECTED],), out[TALLY], extras={tag: out[tag] for tag in self.fn.extra_outputs})
