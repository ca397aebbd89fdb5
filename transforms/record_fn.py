"""The per-record contract every stage follows, without Beam.

A stage's logic is a `RecordFn`: a plain callable over one element that returns

    the record (possibly changed)   to keep it
    a `Rejected`                    to drop it, with its stage, reason and detail
    an `Extra(tag, value)`          for the extra output `tag` (named in `extra_outputs`)
    a `Grouped(value, records)`     to keep `records` records as one output (a spill file of them)
    None                            for nothing
    an iterator of these            (a source reading a repository, a group resolved at once)

A stage reads one record per element, or, with `each_output_is_an_input`, one per
record it keeps or rejects. Its counts are ((stage, kind, reason), n) pairs, kind
"in", "kept", "rejected" or "stat", and every stage must read = kept + rejected.

`transforms.base.ApplyStage` runs a RecordFn in Beam; `run_record_fn` runs it here,
on a list, by the same rules (`StageCounts.route`), for tests and benchmarks.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator
from typing import Any, Iterable, NamedTuple

from infra.accounting import fold_tallies
from schemas.records import Rejected

KEPT = "kept"
REJECTED = "rejected"


class RecordFn:
    """Per-record logic of a stage. Subclasses set `stage` and implement `__call__`.

    Heavy state (tables, tokenizers, Bloom filters) is built in `setup`, which runs
    once per worker; the constructor only stores small picklable parameters.
    """

    stage: str = ""
    extra_outputs: tuple[str, ...] = ()  # tags of the Extras the fn returns besides kept/rejected
    each_output_is_an_input = False  # True: every kept or rejected record it returns counts as one read

    def setup(self) -> None:
        pass

    def __call__(self, record: Any) -> Any:
        raise NotImplementedError

    def finish_bundle(self) -> Any:
        """Outputs held back until the bundle ends (e.g. batched work), returned as `__call__` returns them."""
        return None

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


class Extra(NamedTuple):
    """An output for the stage's extra output `tag` (snapshots, keys): not counted."""

    tag: str
    value: Any


class Grouped(NamedTuple):
    """One kept output that stands for `records` kept records (e.g. a spill file of the threads they make)."""

    value: Any
    records: int


def outputs_of(out) -> Iterable:
    """What a RecordFn returned, as an iterable: nothing, one output, or what an iterator yields."""
    if out is None:
        return ()
    if isinstance(out, Iterator):
        return out
    return (out,)


class StageCounts:
    """One stage's counts: ((stage, kind, reason), n), kind in, kept, rejected or stat."""

    def __init__(self, stage: str):
        self.stage = stage
        self.counts: collections.Counter = collections.Counter()

    def add_in(self, n: int = 1) -> None:
        self.counts[(self.stage, "in", "")] += n

    def add_kept(self, n: int = 1) -> None:
        self.counts[(self.stage, "kept", "")] += n

    def add_rejected(self, reason: str) -> None:
        self.counts[(self.stage, "rejected", reason)] += 1

    def add_stats(self, stats: collections.Counter) -> None:
        for name, n in stats.items():
            self.counts[(self.stage, "stat", name)] += n
        stats.clear()

    def route(self, out: Any, is_input: bool = False) -> tuple[str, Any]:
        """Count one output of the stage (also as a read when `is_input`); return where it goes
        (KEPT, REJECTED or its extra's tag) and the value that goes there."""
        if isinstance(out, Extra):
            return out.tag, out.value
        n = out.records if isinstance(out, Grouped) else 1
        if is_input:
            self.add_in(n)
        if isinstance(out, Rejected):
            self.add_rejected(out.reason)
            return REJECTED, out
        self.add_kept(n)
        return KEPT, out.value if isinstance(out, Grouped) else out


@dataclasses.dataclass
class StageResult:
    """What `run_record_fn` gives: the outputs by where they go, and the stage's folded counts."""

    kept: list
    rejected: list
    extras: dict[str, list]
    counts: dict  # {"in", "kept", "rejected": {reason: n}, "stats": {name: n}}, as in the manifest


def run_record_fn(fn: RecordFn, elements: Iterable, **side_inputs) -> StageResult:
    """Run `fn` over `elements` as one bundle, by the rules ApplyStage follows in Beam."""
    counts = StageCounts(fn.stage)
    routed: dict[str, list] = {KEPT: [], REJECTED: [], **{tag: [] for tag in fn.extra_outputs}}

    def take(out):
        for item in outputs_of(out):
            tag, value = counts.route(item, fn.each_output_is_an_input)
            routed[tag].append(value)

    fn.setup()
    try:
        for element in elements:
            if not fn.each_output_is_an_input:
                counts.add_in()
            take(fn(element, **side_inputs))
        take(fn.finish_bundle())
        counts.add_stats(fn.stats)
    finally:
        fn.teardown()
    folded = fold_tallies(counts.counts.items()).get(fn.stage, {"in": 0, "kept": 0, "rejected": {}, "stats": {}})
    kept, rejected = routed.pop(KEPT), routed.pop(REJECTED)
    return StageResult(kept, rejected, routed, folded)
