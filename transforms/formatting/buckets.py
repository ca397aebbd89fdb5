"""Six buckets on an inverse binary-logarithmic percentile scale (paper §3.3, footnote 10).

Bucket 0 holds values up to the 50th percentile, bucket 1 up to the 75th, then the
87.5th, 93.75th and 96.875th; bucket 5 holds the rest. Used for GitHub stars (`dstars`)
and StackOverflow scores (`dscore`). The boundaries are computed over the run's data
by Beam and handed to the formatters as a side input.

The percentiles are exact (nearest rank: the boundary for percentile p is the smallest
value with at least ceil(p * N) of the N values at or below it), computed from a
histogram of the values. Beam's ApproximateQuantiles would also do, but beyond about
ten thousand values its answer depends on how the runner splits the input into
bundles, and a different boundary changes the training text: reruns would not be
byte-identical. A histogram is exact whatever the bundling, and its memory is bounded
by the number of distinct values (star counts and scores are integers with a few
thousand distinct values), not by the number of repositories or posts.
"""

from __future__ import annotations

import bisect
import collections
from fractions import Fraction

import apache_beam as beam

NUM_BUCKETS = 6
# Upper percentile of bucket k is 100 * (1 - 2 ** -(k + 1)): 50, 75, 87.5, 93.75, 96.875.
BUCKET_FRACTIONS = tuple(1 - Fraction(1, 2 ** (k + 1)) for k in range(NUM_BUCKETS - 1))
BUCKET_PERCENTILES = tuple(float(100 * f) for f in BUCKET_FRACTIONS)


def bucket_of(value: float, boundaries: list[float]) -> int:
    """Bucket of a value: 0 when value <= boundaries[0], ..., 5 above boundaries[4]."""
    return bisect.bisect_left(boundaries, value)


def boundaries_from_histogram(histogram: dict) -> list:
    """The five bucket boundaries from {value: how many times it occurs}; [] when empty."""
    total = sum(histogram.values())
    if not total:
        return []
    ranks = [-(-total * f.numerator // f.denominator) for f in BUCKET_FRACTIONS]  # ceil(total * f), exact
    boundaries, seen = [], 0
    for value, n in sorted(histogram.items()):
        seen += n
        while len(boundaries) < len(ranks) and seen >= ranks[len(boundaries)]:
            boundaries.append(value)
    return boundaries


class HistogramFn(beam.CombineFn):
    """Numbers → {value: count}. Combiner-lifted: each worker counts its own bundles first."""

    def create_accumulator(self):
        return collections.Counter()

    def add_input(self, counts, value):
        counts[value] += 1
        return counts

    def merge_accumulators(self, accumulators):
        merged = collections.Counter()
        for counts in accumulators:
            merged.update(counts)
        return merged

    def extract_output(self, counts):
        return dict(counts)


def buckets_entry(boundaries: list, **how: object) -> dict:
    """A buckets entry of the manifest (`star_buckets`, `score_buckets`): the boundaries and how they were obtained."""
    return {"percentiles": list(BUCKET_PERCENTILES), "boundaries": list(boundaries), **how}


def entry_boundaries(entry: dict) -> list:
    return entry["boundaries"]


def entry_of_histogram(histogram: dict, counted: str) -> dict:
    """The entry of buckets drawn from a histogram: its boundaries, and how many values (`counted`) it held, so
    one global combine (HistogramFn's) gives both."""
    return buckets_entry(boundaries_from_histogram(histogram), **{counted: sum(histogram.values())})
