"""Near-dedup's Jaccard of pairs of files as an external sort: the shingle hashes never sit in a shuffle.

The stage measures two sets of pairs this way: its candidate pairs (the check keeps
those at the threshold) and each rejected file with its survivor (the rejection's detail).

Each end of an edge sends what is compared: its shingle hashes (8
bytes per token) or, against an earlier version, its MinHash signature. Grouped by
edge in a GroupByKey, Beam's local runner would hold all of them until the grouping
ends: a file's shingles once per edge it is in, more than the corpus itself when
candidates are many. Here each bundle writes its (edge, value) pairs as sorted runs on
scratch storage (`infra.writers.SortIntoShards`); only (partition, run path) crosses
the shuffle, and one worker per partition merges its runs (`infra.writers.merged_groups`)
and compares the two values of each edge in turn. The sort key is (edge, kind): the
two ends of an edge may come in either order, and the comparison is symmetric, so the
similarities do not depend on bundling.
"""

from __future__ import annotations

import operator

import apache_beam as beam
import numpy as np

from infra.runtime import configure_worker
from infra.writers import SortIntoShards, merged_groups, shard_of
from transforms.dedup.minhash import jaccard
from transforms.dedup.near_versions import SHINGLES, SIGNATURE_DTYPE

CHECK_PARTITIONS = 16  # workers that merge the runs
HELD_OVERHEAD_BYTES = 300  # what a run writer holds per pair besides the value's bytes (tuples, nodes' ids)


def edge_partition(pair: tuple) -> tuple[tuple[int, tuple, bytes]]:
    """placements for SortIntoShards: (edge, (kind, bytes)) → (partition of the edge, (edge, kind), bytes)."""
    edge, (kind, value) = pair
    return ((shard_of(repr(edge), CHECK_PARTITIONS), (edge, kind), value),)


def held_pair_bytes(value: bytes) -> int:
    return len(value) + HELD_OVERHEAD_BYTES


def similarity(edge_values) -> tuple[tuple, float]:
    """(edge, [what both ends sent]) → (edge, their Jaccard): exact from two shingle sets, else estimated by
    the share of equal signature values (within about 0.03 at 256 permutations)."""
    edge, ((kind_a, a), (kind_b, b)) = edge_values
    if kind_a == kind_b == SHINGLES:
        return edge, jaccard(np.frombuffer(a, dtype=np.uint64), np.frombuffer(b, dtype=np.uint64))
    return edge, float(np.mean(np.frombuffer(a, dtype=SIGNATURE_DTYPE) == np.frombuffer(b, dtype=SIGNATURE_DTYPE)))


class SimilarityOfEdgesFn(beam.DoFn):
    """(partition, run paths) → (edge, Jaccard) for every edge of that partition."""

    def setup(self):
        configure_worker()

    def process(self, partition_runs):
        _, paths = partition_runs
        for edge, ends in merged_groups(paths, operator.itemgetter(0)):
            yield similarity((edge, tuple((kind, value) for (_, kind), value in ends)))


class EdgeSimilarities(beam.PTransform):
    """(edge, (kind, bytes)) pairs, two per edge (one PCollection or a tuple of them) → (edge, Jaccard)."""

    def __init__(self, scratch_dir: str):
        super().__init__()
        self.scratch_dir = scratch_dir

    def expand(self, values):
        return (
            values
            | "SortValues" >> SortIntoShards(self.scratch_dir, edge_partition, held_pair_bytes)
            | "SimilarityOfEdges" >> beam.ParDo(SimilarityOfEdgesFn())
        )
