"""The contract every stage follows.

A stage's logic is a `RecordFn`: a plain callable over one element that returns the
record (possibly changed) to keep it, a `Rejected` to drop it, None for nothing, or a
generator of any number of these (a source reading a repository, a group resolved at
once). `pvalue.TaggedOutput`s it yields go to the extra outputs it names in
`extra_outputs` (snapshots, keys). `ApplyStage` wraps it in Beam with these outputs:

    main      kept records
    rejected  `Rejected` records
    tally     ((stage, kind, reason), count) pairs, emitted once per bundle, where
              kind is "in", "kept", "rejected" or "stat"
    ...       one per name in `extra_outputs`

A stage reads one record per element, or, with `each_output_is_an_input`, one per
record it yields (a source reads the files of a repository: read = kept + rejected).

The tallies from every stage are summed into the manifest's counts, and the run
checks in = kept + rejected for every stage before it commits the version.
"""

from __future__ import annotations

import collections
import inspect
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
    extra_outputs: tuple[str, ...] = ()  # tags of the TaggedOutputs the fn yields besides kept/rejected
    each_output_is_an_input = False  # True: every kept or rejected record it yields counts as one read

    def setup(self) -> None:
        pass

    def __call__(self, record: Any) -> Any:
        raise NotImplementedError

    def finish_bundle(self) -> Iterable:
        """Records or TaggedOutputs held back until the bundle ends (e.g. batched work)."""
        return ()

    def teardown(self) -> None:
        pass

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
            if isinstance(item, pvalue.TaggedOutput):
                yield item
                continue
            if self.fn.each_output_is_an_input:
                self.tally.add_in()
            yield self.tally.route(item)


def in_global_window(out):
    """An output of `finish_bundle`, which Beam needs windowed (every stage runs in the global window)."""
    if isinstance(out, pvalue.TaggedOutput):
        return pvalue.TaggedOutput(out.tag, in_global_window(out.value))
    return out if isinstance(out, WindowedValue) else WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])


def outputs_of(out) -> Iterable:
    """What a RecordFn returned, as an iterable: nothing, one record, or what a generator yields."""
    if out is None:
        return ()
    if inspect.isgenerator(out) or isinstance(out, (list, tuple)) and not hasattr(out, "_fields"):
        return out
    return (out,)


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
        stage = beam.ParDo(StageDoFn(self.fn), **self.record_fn_inputs).with_output_types(Any)  # not inferred from bytecode
        return records | stage.with_outputs(REJECTED, TALLY, *self.fn.extra_outputs, main="kept")
