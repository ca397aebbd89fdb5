"""Six star/score buckets on the inverse binary-log percentile scale (paper §3.3, footnote 10)."""

from __future__ import annotations

import collections
import math

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import combine_in_bundles, local_pipeline
from transforms.formatting.buckets import (
    BUCKET_PERCENTILES,
    NUM_BUCKETS,
    HistogramFn,
    boundaries_from_histogram,
    bucket_of,
    buckets_entry,
    entry_of_histogram,
)


def nearest_rank(values: list, percentile: float):
    """Textbook nearest-rank percentile over a sorted copy: the reference for the histogram."""
    ordered = sorted(values)
    return ordered[math.ceil(percentile / 100 * len(ordered)) - 1]


def test_percentiles_halve_the_remaining_tail():
    assert BUCKET_PERCENTILES == (50.0, 75.0, 87.5, 93.75, 96.875)
    assert NUM_BUCKETS == 6


def test_thirty_two_values_fill_buckets_of_16_8_4_2_1_1():
    values = list(range(1, 33))
    boundaries = boundaries_from_histogram(collections.Counter(values))
    assert boundaries == [16, 24, 28, 30, 31]
    sizes = collections.Counter(bucket_of(v, boundaries) for v in values)
    assert [sizes[b] for b in range(6)] == [16, 8, 4, 2, 1, 1]


def test_bucket_of_puts_a_boundary_value_in_the_lower_bucket():
    boundaries = [10, 20, 30, 40, 50]
    assert [bucket_of(v, boundaries) for v in (0, 10, 11, 20, 21, 50, 51, 10**6)] == [0, 0, 1, 1, 2, 4, 5, 5]
    assert bucket_of(3, []) == 0


def test_ties_and_tiny_inputs():
    assert boundaries_from_histogram({}) == []
    assert boundaries_from_histogram({7: 1}) == [7] * 5
    # most repositories have no stars: the 50th and 75th percentiles are both 0
    assert boundaries_from_histogram({0: 80, 3: 10, 50: 6, 900: 4}) == [0, 0, 3, 50, 900]
    # three repositories (the bundled sample's GitHub ones)
    assert boundaries_from_histogram(collections.Counter([3, 120, 5400])) == [120, 5400, 5400, 5400, 5400]


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-50, 10**6) | st.integers(0, 20), min_size=1, max_size=400))
def test_boundaries_are_exact_nearest_rank_percentiles(values):
    boundaries = boundaries_from_histogram(collections.Counter(values))
    assert boundaries == [nearest_rank(values, p) for p in BUCKET_PERCENTILES]
    for p, b in zip(BUCKET_PERCENTILES, boundaries):
        at_or_below = sum(v <= b for v in values)
        below = sum(v < b for v in values)
        assert below < p / 100 * len(values) <= at_or_below


def test_boundaries_do_not_depend_on_bundling():
    values = [(i * 7919) % 5003 for i in range(12_000)]  # more values than ApproximateQuantiles keeps exactly
    expected = [nearest_rank(values, p) for p in BUCKET_PERCENTILES]
    for bundles in (1, 2, 7):
        assert boundaries_from_histogram(combine_in_bundles(HistogramFn(), values, bundles)) == expected, bundles


@pytest.mark.slow
def test_beam_boundaries_are_the_nearest_rank_percentiles():
    """The global histogram in a pipeline, its input spread by a Reshuffle (worker processes run it in the
    multi_processing sample build)."""
    values = [(i * 7919) % 5003 for i in range(2_000)]
    expected = [nearest_rank(values, p) for p in BUCKET_PERCENTILES]
    with local_pipeline() as p:
        spread = p | beam.Create(values, reshuffle=False) | beam.Reshuffle()
        assert_that(spread | beam.CombineGlobally(HistogramFn()) | beam.Map(boundaries_from_histogram), equal_to([expected]))


def test_beam_buckets_entry_of_nothing_has_no_boundaries_and_counts_zero():
    with local_pipeline() as p:
        histogram = p | beam.Create([]) | beam.CombineGlobally(HistogramFn())
        assert_that(histogram | beam.Map(entry_of_histogram, "posts"), equal_to([buckets_entry([], posts=0)]))
