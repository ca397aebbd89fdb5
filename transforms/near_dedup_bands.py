"""Near-dedup's LSH buckets as an external sort: the (band key, node) pairs never sit in a shuffle.

Every file gives one (band key, node) pair per band (36 by default). Grouped by a
GroupByKey, Beam's local runner would hold all of them as Python objects until the
grouping ends, growing with the corpus. Here each bundle writes its pairs as sorted
runs on scratch storage (`infra.writers.SortIntoShards`); only (partition, run path)
crosses the shuffle, and one worker per partition merges its runs
(`infra.writers.merged_groups`) and walks the buckets of equal band key in order, holding
one bucket at a time. The sort key is the pair itself, which tells every two different
pairs apart, so the merged order, and so the edges, do not depend on bundling.
"""

from __future__ import annotations

import operator
from typing import Iterable, Iterator

import apache_beam as beam

from infra.spill import return_freed_memory
from infra.writers import SortIntoShards, merged_groups

BAND_PARTITIONS = 16  # workers that merge band runs; a band key is already a 64-bit mix, so `key % 16` spreads them evenly
HELD_PAIR_BYTES = 300  # what a run writer holds per pair (tuples, two ints, a node's id): keeps its RUN_BYTES budget honest


def band_partition(pair: tuple) -> tuple[int, tuple, None]:
    """shard_and_key for SortIntoShards: (band key, node) → (partition of the key, the pair as sort key, nothing else)."""
    band_key, _ = pair
    return band_key % BAND_PARTITIONS, pair, None


def held_pair_bytes(_stored) -> int:
    return HELD_PAIR_BYTES


def star_edges(nodes: Iterable[tuple]) -> Iterator[tuple[tuple, tuple]]:
    """The sorted nodes of one bucket → (least node, node) for every other distinct node."""
    nodes = iter(nodes)
    least = next(nodes, None)
    last = least
    for node in nodes:
        if node != last:
            yield least, node
            last = node


class StarEdgesFn(beam.DoFn):
    """(partition, run paths) → the star edges of every bucket whose band key falls in that partition."""

    def setup(self):
        return_freed_memory()

    def process(self, partition_runs):
        _, paths = partition_runs
        for _, bucket in merged_groups(paths, operator.itemgetter(0)):
            yield from star_edges(pair[1] for pair, _ in bucket)


class StarEdgesOfBands(beam.PTransform):
    """(band key, node) pairs (one PCollection or a tuple of them) → (least node, node) per other node of each
    bucket; the same edge may come from several buckets (the caller removes repeats)."""

    def __init__(self, scratch_dir: str):
        super().__init__()
        self.scratch_dir = scratch_dir

    def expand(self, bands):
        return (
            bands
            | "SortBands" >> SortIntoShards(self.scratch_dir, band_partition, held_pair_bytes)
            | "StarEdgesOfBuckets" >> beam.ParDo(StarEdgesFn())
        )
