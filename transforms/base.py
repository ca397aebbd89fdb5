"""The Beam adapter of the stage contract (`transforms.record_fn`).

`ApplyStage` runs a `RecordFn` (or a chain of them, `fused`) as a `ParDo` and returns
its `StageOutputs`:

    kept      kept records
    rejected  `Rejected` records
    tally     ((stage, kind, reason), count) pairs, emitted once per bundle, where
              kind is "in", "kept", "rejected" or "stat"
    extras    one per name in the fn's `extra_outputs`, from the `Extra`s it returns

The tallies from every stage are summed into the manifest's counts, and the run
checks in = kept + rejected for every stage before it commits the version.
"""

from __future__ import annotations

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
from transforms.record_fn import KEPT, REJECTED, RecordFn, StageCounts, outputs_of
from transforms.stage_outputs import StageOutputs

TALLY = "tally"
PROGRESS_SECONDS = 15.0  # how often a worker logs a stage's progress

log = logging.getLogger(__name__)


class Tally(StageCounts):
    """Counts one stage's records within a bundle, and logs progress now and then.

    Per record it only adds to plain counters; the Beam metrics (progress on Dataflow's
    page) are made once per bundle, in `drain`.
    """

    def __init__(self, stage: str):
        super().__init__(stage)
        self.total_in = 0
        self.last_log = time.monotonic()
        self.in_counter = Metrics.counter(stage, "in")
        self.kept_counter = Metrics.counter(stage, "kept")
        self.rejected_counter = Metrics.counter(stage, "rejected")

    def add_in(self, n: int = 1) -> None:
        super().add_in(n)
        self.total_in += n
        if self.total_in % 1024 < n and time.monotonic() - self.last_log > PROGRESS_SECONDS:
            self.last_log = time.monotonic()
            log.info("[%s] %d records read by this worker", self.stage, self.total_in)

    def drain(self) -> Iterable[pvalue.TaggedOutput]:
        """The bundle's counts as windowed tally outputs (for `finish_bundle`), and as metrics."""
        rejected = 0
        for key, n in sorted(self.counts.items()):
            _, kind, _ = key
            if kind == "in":
                self.in_counter.inc(n)
            elif kind == "kept":
                self.kept_counter.inc(n)
            elif kind == "rejected":
                rejected += n
            yield in_global_window(pvalue.TaggedOutput(TALLY, (key, n)))
        if rejected:
            self.rejected_counter.inc(rejected)
        self.counts.clear()


class StageDoFn(beam.DoFn):
    """Runs a chain of `RecordFn`s on each element, routing kept/rejected and tallying each.

    What one fn keeps goes straight to the next, inside this DoFn: a chain of cheap
    per-record stages costs one Beam dispatch per record, not one per stage.
    """

    def __init__(self, fns: tuple[RecordFn, ...]):
        self.fns = fns

    def setup(self):
        configure_worker()  # sources and stages read and write the store on workers
        for fn in self.fns:
            fn.setup()
        self.tallies = [Tally(fn.stage) for fn in self.fns]
        self.takes = [side_input_names(fn) for fn in self.fns]

    def process(self, record, **side_inputs):
        yield from self._run(0, record, side_inputs)

    def finish_bundle(self):
        for i, fn in enumerate(self.fns):
            for out in self._route(i, fn.finish_bundle(), {}):
                yield in_global_window(out)
        for fn, tally in zip(self.fns, self.tallies):
            tally.add_stats(fn.stats)
            yield from tally.drain()

    def teardown(self):
        for fn in self.fns:
            fn.teardown()

    def _run(self, i: int, record, side_inputs: dict):
        """Call fn i on one record (with the side inputs it names) and route what it returns."""
        fn, takes = self.fns[i], self.takes[i]
        if not fn.each_output_is_an_input:
            self.tallies[i].add_in()
        mine = {k: v for k, v in side_inputs.items() if k in takes} if side_inputs and takes is not None else side_inputs
        yield from self._route(i, fn(record, **mine), side_inputs)

    def _route(self, i: int, out, side_inputs: dict):
        """Tally fn i's outputs; what it keeps goes to fn i + 1, or out of the chain after the last."""
        fn, tally, last = self.fns[i], self.tallies[i], i + 1 == len(self.fns)
        for item in outputs_of(out):
            tag, value = tally.route(item, fn.each_output_is_an_input)
            if tag != KEPT:
                yield pvalue.TaggedOutput(tag, value)
            elif last:
                yield value
            else:
                yield from self._run(i + 1, value, side_inputs)


def side_input_names(fn: RecordFn) -> set[str] | None:
    """The keyword arguments a fn's `__call__` takes (None: any, it takes **kwargs)."""
    params = inspect.signature(fn.__call__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def in_global_window(out):
    """An output of `finish_bundle`, which Beam needs windowed (every stage runs in the global window)."""
    if isinstance(out, pvalue.TaggedOutput):
        return pvalue.TaggedOutput(out.tag, in_global_window(out.value))
    return out if isinstance(out, WindowedValue) else WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])


class ApplyStage(beam.PTransform):
    """Stages as one composite transform: their kept records, rejected records, tallies and extras.

    `ApplyStage(fn)` runs one stage; `ApplyStage(fn1, fn2, ...)` runs a chain in one
    `ParDo`, each fn reading what the one before it kept (`rejected`, `tally` and the
    extras hold every fn's). Keyword arguments are side inputs (e.g.
    `beam.pvalue.AsSingleton(pcoll)`); their values reach each RecordFn's `__call__`
    that names them, as keyword arguments of the same names.
    """

    def __init__(self, *fns: RecordFn, **side_inputs):
        super().__init__(label=None)
        if not fns:
            raise ValueError("ApplyStage needs at least one RecordFn")
        self.fns = fns
        self.record_fn_inputs = side_inputs  # not `side_inputs`: Beam's PTransform uses that name

    @property
    def fn(self) -> RecordFn:
        """The fn of a one-stage transform."""
        (fn,) = self.fns
        return fn

    @property
    def stage(self) -> str:
        return self.fn.stage

    @property
    def stages(self) -> list[str]:
        return [fn.stage for fn in self.fns]

    def default_label(self):
        return "+".join(type(fn).__name__ for fn in self.fns)

    def expand(self, records) -> StageOutputs:
        stage = beam.ParDo(StageDoFn(self.fns), **self.record_fn_inputs).with_output_types(Any)  # not inferred from bytecode
        extra_tags = [tag for fn in self.fns for tag in fn.extra_outputs]
        out = records | stage.with_outputs(REJECTED, TALLY, *extra_tags, main=KEPT)
        return StageOutputs(out[KEPT], (out[REJECTED],), out[TALLY], extras={tag: out[tag] for tag in extra_tags})


def stage_names_of(stage: beam.PTransform) -> list[str]:
    """The stage names a transform runs: every fn's of an `ApplyStage` chain, else its `stage`."""
    return stage.stages if isinstance(stage, ApplyStage) else [stage.stage]


def fused(stages: list[beam.PTransform]) -> list[beam.PTransform]:
    """The stages, with each run of consecutive `ApplyStage`s without side inputs made one chain."""
    out: list[beam.PTransform] = []
    for stage in stages:
        previous = out[-1] if out else None
        if isinstance(stage, ApplyStage) and isinstance(previous, ApplyStage):
            if not stage.record_fn_inputs and not previous.record_fn_inputs:
                out[-1] = ApplyStage(*previous.fns, *stage.fns)
                continue
        out.append(stage)
    return out
