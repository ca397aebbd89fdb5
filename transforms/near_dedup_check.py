"""Near-dedup's Jaccard check as an external sort: the shingle hashes of candidate files never sit in a shuffle.

Each end of a candidate edge sends what the check compares: its shingle hashes (8
bytes per token) or, against an earlier version, its MinHash signature. Grouped by
edge in a GroupByKey, Beam's local runner would hold all of them until the grouping
ends: a file's shingles once per edge it is in, more than the corpus itself when
candidates are many. Here each bundle writes its (edge, value) pairs as sorted runs on
scratch storage (`infra.writers.SortIntoShards`); only (partition, run path) crosses
the shuffle, and one worker per partition merges its runs (`infra.writers.merged_groups`)
and compares the two values of each edge in turn. The sort key is (edge, kind): the
two ends of an edge may come in either order, and the comparison is symmetric, so the
edges kept do not depend on bundling.
"""

from __future__ import annotations

import operator

import apache_beam as beam
import numpy as np

from infra.spill import return_freed_memory
from infra.writers import SortIntoShards, merged_groups, shard_of
from transforms.minhash import jaccard
from transforms.near_dedup_versions import SHINGLES, SIGNATURE_DTYPE

CHECK_PARTITIONS = 16  # workers that merge the check's runs
HELD_OVERHEAD_BYTES = 300  # what a run writer holds per pair besides the value's bytes (tuples, nodes' ids)


def edge_partition(pair: tuple) -> tuple[int, tuple, bytes]:
    """shard_and_key for SortIntoShards: (edge, (kind, bytes)) → (partition of the edge, (edge, kind), bytes)."""
    edge, (kind, value) = pair
    return shard_of(repr(edge), CHECK_PARTITIONS), (edge, kind), value


def held_pair_bytes(value: bytes) -> int:
    return len(value) + HELD_OVERHEAD_BYTES


def similar_enough(edge_values, threshold: float):
    """(edge, [what both ends sent]) → the edge if their Jaccard reaches the threshold: exact from two shingle
    sets, else estimated by the share of equal signature values (within about 0.03 at 256 permutations)."""
    edge, ((kind_a, a), (kind_b, b)) = edge_values
    if kind_a == kind_b == SHINGLES:
        similarity = jaccard(np.frombuffer(a, dtype=np.uint64), np.frombuffer(b, dtype=np.uint64))
    else:
        similarity = float(np.mean(np.frombuffer(a, dtype=SIGNATURE_DTYPE) == np.frombuffer(b, dtype=SIGNATURE_DTYPE)))
    if similarity >= threshold:
        yield edge


class CheckEdgesFn(beam.DoFn):
    """(partition, run paths) → every edge of that partition whose two ends reach the threshold."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def setup(self):
        return_freed_memory()

    def process(self, partition_runs):
        _, paths = partition_runs
        for edge, ends in merged_groups(paths, operator.itemgetter(0)):
            yield from similar_enough((edge, tuple((kind, value) for (_, kind), value in ends)), self.threshold)


class SimilarEdges(beam.PTransform):
    """(edge, (kind, bytes)) pairs, two per edge (one PCollection or a tuple of them) → the edges whose
    ends reach the Jaccard threshold."""

    def __init__(self, scratch_dir: str, threshold: float):
        super().__init__()
        self.scratch_dir = scratch_dir
        self.threshold = threshold

    def expand(self, values):
        return (
            values
            | "SortCheckValues" >> SortIntoShards(self.scratch_dir, edge_partition, held_pair_bytes)
            | "CheckEdges" >> beam.ParDo(CheckEdgesFn(self.threshold))
        )
