"""Six buckets on an inverse binary-logarithmic percentile scale (paper §3.3, footnote 10).

Bucket 0 holds values up to the 50th percentile, bucket 1 up to the 75th, then the
87.5th, 93.75th and 96.875th; bucket 5 holds the rest. Used for GitHub stars (`dstars`)
and StackOverflow scores (`dscore`). The boundaries are computed over the run's data
with Beam's ApproximateQuantiles and handed to the formatters as a side input.
"""

from __future__ import annotations

import bisect

import apache_beam as beam

NUM_BUCKETS = 6
# Upper percentile of bucket k is 100 * (1 - 2 ** -(k + 1)): 50, 75, 87.5, 93.75, 96.875.
BUCKET_PERCENTILES = tuple(100 * (1 - 2 ** -(k + 1)) for k in range(NUM_BUCKETS - 1))
# ApproximateQuantiles with 33 quantiles gives the 0th, 1/32th, ..., 32/32th quantiles;
# each bucket percentile is a multiple of 1/32.
NUM_QUANTILES = 33
QUANTILE_INDEXES = tuple(int(p * 32 / 100) for p in BUCKET_PERCENTILES)


def bucket_of(value: float, boundaries: list[float]) -> int:
    """Bucket of a value: 0 when value <= boundaries[0], ..., 5 above boundaries[4]."""
    return bisect.bisect_left(boundaries, value)


def boundaries_from_quantiles(quantiles: list[float]) -> list[float]:
    """The five bucket boundaries from 33 evenly spaced quantiles (min ... max)."""
    if not quantiles:
        return []
    if len(quantiles) != NUM_QUANTILES:
        raise ValueError(f"expected {NUM_QUANTILES} quantiles, got {len(quantiles)}")
    return [quantiles[i] for i in QUANTILE_INDEXES]


class ComputeBucketBoundaries(beam.PTransform):
    """PCollection of numbers → a single-element PCollection: the five boundaries.

    Feed it one value per unit that is bucketed (one per repository for stars, one per
    post for scores), not one per file. Use the result with `beam.pvalue.AsSingleton`.
    """

    def expand(self, values):
        return (
            values
            | "Quantiles" >> beam.ApproximateQuantiles.Globally(NUM_QUANTILES)
            | "PickBoundaries" >> beam.Map(boundaries_from_quantiles)
        )
