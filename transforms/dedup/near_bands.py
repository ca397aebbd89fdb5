"""Near-dedup's LSH buckets as an external sort: the (band key, node) pairs never sit in a shuffle.

Every file gives one (band key, (node, sketch)) pair per band (36 by default). Grouped by a
GroupByKey, Beam's local runner would hold all of them as Python objects until the
grouping ends, growing with the corpus. Here each bundle writes its pairs as sorted
runs on scratch storage (`infra.writers.SortIntoShards`); only (partition, run path)
crosses the shuffle, and one worker per partition merges its runs
(`infra.writers.merged_groups`) and walks the buckets of equal band key in order, holding
one bucket at a time. The sort key is the pair itself, which tells every two different
pairs apart, so the merged order, and so the edges, do not depend on bundling.

A bucket of n files gives n - 1 candidate edges, not all n(n - 1)/2 pairs: each file is
linked to one file before it in rank order, the one whose sketch (the low byte of 64 of
its MinHash values) agrees most, among the first `LINK_WINDOW`. Linking each file to
the bucket's least file instead (a star) keeps the bucket connected too, but the
Jaccard check then drops every link of a file not similar to that one file, though it
may be similar to others: 10,000 copies of copies (a random tree) kept 6 files that way.
"""

from __future__ import annotations

import operator
from typing import Iterable, Iterator

import apache_beam as beam
import numpy as np

from infra.runtime import configure_worker
from infra.writers import SortIntoShards, merged_groups

BAND_PARTITIONS = 16  # workers that merge band runs; a band key is already a 64-bit mix, so `key % 16` spreads them evenly
HELD_PAIR_BYTES = 400  # what a run writer holds per pair (tuples, two ints, a node's id, a sketch): keeps RUN_BYTES honest
SKETCH_VALUES = 64  # MinHash values whose low bytes make a file's sketch
LINK_WINDOW = 512  # a file is compared with at most this many files before it in its bucket: a bucket costs n x 512 x 64 B


def sketch(signature: np.ndarray) -> bytes:
    """The low byte of the last SKETCH_VALUES MinHash values: two files' equal bytes estimate their Jaccard."""
    return (signature[-SKETCH_VALUES:] & 0xFF).astype(np.uint8).tobytes()


def band_partition(file_bands: tuple) -> list[tuple[int, tuple, None]]:
    """placements for SortIntoShards: a file's (band keys, (node, sketch)) → for each band key, (partition of the
    key, the pair (band key, (node, sketch)) as sort key, nothing else)."""
    band_keys, member = file_bands
    return [(band_key % BAND_PARTITIONS, (band_key, member), None) for band_key in band_keys]


def held_pair_bytes(_stored) -> int:
    return HELD_PAIR_BYTES


def bucket_edges(members: Iterable[tuple]) -> Iterator[tuple[tuple, tuple]]:
    """The sorted (node, sketch) of one bucket → (earlier node, node) for every other distinct node: the earlier
    node among the first LINK_WINDOW whose sketch agrees most (the least of those on a tie).

    Most buckets hold one file, and in a big bucket of copies most sketches equal the first: numpy
    is touched only for a sketch that does not, and the window fills from the sketches kept so far.
    """
    nodes, sketches, last, window, filled = [], [], None, None, 0
    for node, node_sketch in members:
        if node == last:
            continue
        if not nodes:
            pass
        elif node_sketch == sketches[0]:
            yield nodes[0], node
        else:
            seen = len(sketches)
            if window is None:
                window = np.empty((LINK_WINDOW, len(node_sketch)), dtype=np.uint8)
            if filled < seen:
                window[filled:seen] = np.frombuffer(b"".join(sketches[filled:]), dtype=np.uint8).reshape(seen - filled, -1)
                filled = seen
            agreement = (window[:seen] == np.frombuffer(node_sketch, dtype=np.uint8)).sum(axis=1)
            yield nodes[int(np.argmax(agreement))], node
        if len(nodes) < LINK_WINDOW:
            nodes.append(node)
            sketches.append(node_sketch)
        last = node


class BucketEdgesFn(beam.DoFn):
    """(partition, run paths) → the edges of every bucket whose band key falls in that partition."""

    def setup(self):
        configure_worker()

    def process(self, partition_runs):
        _, paths = partition_runs
        for _, bucket in merged_groups(paths, operator.itemgetter(0)):
            yield from bucket_edges(pair[1] for pair, _ in bucket)


class EdgesOfBands(beam.PTransform):
    """Files' (band keys, (node, sketch)) (one PCollection or a tuple of them) → (earlier node, node) per other node
    of each bucket; the same edge may come from several buckets (the caller removes repeats)."""

    def __init__(self, scratch_dir: str):
        super().__init__()
        self.scratch_dir = scratch_dir

    def expand(self, bands):
        return (
            bands
            | "SortBands" >> SortIntoShards(self.scratch_dir, band_partition, held_pair_bytes)
            | "EdgesOfBuckets" >> beam.ParDo(BucketEdgesFn())
        )
