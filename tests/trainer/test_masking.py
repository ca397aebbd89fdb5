"""Causal masking (paper §2.1): the sampled spans' distribution, the layout, the loss mask.

Statistical checks compare frequencies from a fixed set of seeds with their exact
probabilities; each must lie within TOLERANCE_SE standard errors sqrt(p(1-p)/N).
At 5 standard errors a correct sampler fails a cell with probability below 1e-6,
and the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import collections
import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.records import record_rng
from trainer.masking import (
    FULL_CHUNK_SPANS,
    MAX_SPANS,
    SpecialIds,
    apply_masks,
    chunk_bounds,
    chunk_length,
    mask_chunk,
    restore,
    sample_span_count,
    sample_spans,
)

IDS = SpecialIds(bos=0, pad=1, eom=2, masks=tuple(range(3, 3 + MAX_SPANS)))
TOLERANCE_SE = 5.0


def assert_frequencies(counts: collections.Counter, expected: dict, n: int) -> None:
    for cell, p in expected.items():
        freq = counts.get(cell, 0) / n
        se = math.sqrt(p * (1 - p) / n)
        message = f"{cell}: frequency {freq:.5f}, expected {p:.5f} (standard error {se:.5f})"
        assert abs(freq - p) <= TOLERANCE_SE * se + 1e-12, message
    unexpected = set(counts) - set(expected)
    assert not unexpected, f"outcomes with probability 0 were drawn: {sorted(unexpected)[:5]}"


def rejection_distribution(n: int, k: int) -> dict:
    """Exact law of §2.1's sampler: k spans, each length ~ U{1..n} and start ~ U over where it fits,
    the whole set resampled while any two overlap. Returns {sorted spans: probability}."""
    spans = [(s, s + length) for length in range(1, n + 1) for s in range(n - length + 1)]
    weight = {sp: 1.0 / (n * (n - (sp[1] - sp[0]) + 1)) for sp in spans}
    law = collections.defaultdict(float)
    for combo in itertools.product(spans, repeat=k):
        ordered = sorted(combo)
        if all(a[1] <= b[0] for a, b in zip(ordered, ordered[1:])):
            law[tuple(ordered)] += math.prod(weight[sp] for sp in combo)
    total = sum(law.values())
    return {key: p / total for key, p in law.items()}


def masked_document(tokens, seed: int, context: int = 2048):
    return mask_chunk(tokens, random.Random(seed), IDS, context)


def sentinel_count(masked) -> int:
    return int(np.isin(masked, IDS.masks).sum()) // 2


# ---------------------------------------------------------------------------- distributions


def binned_counts(counts: collections.Counter, top: int) -> collections.Counter:
    binned = collections.Counter({k: c for k, c in counts.items() if k < top})
    binned[f"{top}+"] = sum(c for k, c in counts.items() if k >= top)
    return binned


def truncated_poisson(k: int) -> float:
    """P(k) for Poisson(1) truncated to [1, 256]: e^-1 / k! / (1 - e^-1) (the mass above 256 is below 1e-500)."""
    return math.exp(-1) / math.factorial(k) / (1 - math.exp(-1))


def binned_probabilities(top: int) -> dict:
    head = {k: truncated_poisson(k) for k in range(1, top)}
    return {**head, f"{top}+": 1 - sum(head.values())}


def test_span_count_follows_poisson_one_truncated_to_1_256():
    n = 50_000
    rng = random.Random(0)
    counts = collections.Counter(sample_span_count(rng, MAX_SPANS) for _ in range(n))
    assert min(counts) >= 1
    assert_frequencies(binned_counts(counts, 6), binned_probabilities(6), n)


def test_masked_documents_carry_poisson_many_spans():
    n = 4_000
    doc = np.arange(1000, 1300)  # 300 tokens in a 2048 context: room for k up to 256
    counts = collections.Counter(sentinel_count(masked_document(doc, seed)[0]) for seed in range(n))
    assert_frequencies(binned_counts(counts, 4), binned_probabilities(4), n)


def test_span_count_is_truncated_where_the_document_has_no_room():
    rng = random.Random(0)
    assert {sample_span_count(rng, 2) for _ in range(2000)} == {1, 2}
    assert {sample_span_count(rng, 1) for _ in range(100)} == {1}
    full = np.arange(1000, 1000 + chunk_length(128))
    counts = {sentinel_count(masked_document(full, s, context=128)[0]) for s in range(3000)}
    assert max(counts) <= FULL_CHUNK_SPANS and len(masked_document(full, 1, context=128)[0]) <= 128


def test_single_span_length_and_start_are_uniform():
    n_tokens, n = 20, 10_000
    spans = [sample_spans(record_rng(7, "single", i), n_tokens, 1)[0] for i in range(n)]
    lengths = collections.Counter(end - start for start, end in spans)
    assert_frequencies(lengths, {length: 1 / n_tokens for length in range(1, n_tokens + 1)}, n)
    # Given its length, a span starts anywhere it fits with equal probability.
    starts = collections.Counter(start for start, end in spans if end - start == 5)
    m = sum(starts.values())
    assert_frequencies(starts, {s: 1 / 16 for s in range(16)}, m)


@pytest.mark.slow
def test_several_spans_follow_the_rejection_sampler_exactly():
    for n_tokens, k in ((8, 2), (6, 3)):
        law = rejection_distribution(n_tokens, k)
        n = 10_000
        drawn = collections.Counter(tuple(sample_spans(record_rng(3, n_tokens, k, i), n_tokens, k)) for i in range(n))
        assert_frequencies(drawn, law, n)


@pytest.mark.slow
def test_span_lengths_of_two_spans_match_the_rejection_sampler():
    """Span lengths are uniform before the overlap rejection; after it short spans dominate."""
    n_tokens, n = 24, 10_000
    law = rejection_distribution(n_tokens, 2)
    expected = collections.defaultdict(float)
    for spans, p in law.items():
        for start, end in spans:
            expected[end - start] += p / 2
    lengths = collections.Counter()
    for i in range(n):  # one span per draw, left and right in turn, so the draws stay independent
        start, end = sample_spans(record_rng(5, i), n_tokens, 2)[i % 2]
        lengths[end - start] += 1
    assert_frequencies(lengths, dict(expected), n)


# ---------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**32), k_max=st.integers(1, MAX_SPANS))
def test_spans_are_sorted_disjoint_and_inside_the_document(n, seed, k_max):
    rng = random.Random(seed)
    k = sample_span_count(rng, min(k_max, n))
    spans = sample_spans(rng, n, k)
    assert len(spans) == k
    assert all(0 <= start < end <= n for start, end in spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(tokens=st.lists(st.integers(300, 60_000), min_size=1, max_size=300), seed=st.integers(0, 2**32))
def test_masked_document_restores_exactly_and_sentinels_are_not_targets(tokens, seed):
    doc = np.array([IDS.bos] + tokens)
    masked, targets = masked_document(doc, seed)
    assert restore(masked, IDS) == doc.tolist()
    assert masked[0] == IDS.bos  # the document-start token stays in place
    is_sentinel = np.isin(masked, IDS.masks)
    assert (targets == ~is_sentinel).all()
    k = int(is_sentinel.sum()) // 2
    assert len(masked) == len(doc) + 3 * k and int((masked == IDS.eom).sum()) == k
    assert masked.tolist().count(IDS.masks[0]) == 2


def test_layout_is_equation_one_of_section_2_1():
    doc = list(range(300, 310))
    masked, targets = apply_masks(doc, [(2, 4), (7, 8)], IDS)
    m0, m1, eom = IDS.masks[0], IDS.masks[1], IDS.eom
    # Left <M0> Middle <M1> Right <M0> Span0 <eom> <M1> Span1 <eom>
    assert masked.tolist() == [300, 301, m0, 304, 305, 306, m1, 308, 309, m0, 302, 303, eom, m1, 307, eom]
    assert targets.tolist() == [m not in (m0, m1) for m in masked.tolist()]
    assert targets.sum() == len(masked) - 4


def test_restore_reads_a_completed_multi_region_infill():
    """§2.2's completed form for two regions: A <M0> C <M1> E <M2> <M0> B <eom> <M1> D <eom>."""
    m0, m1, m2, eom = IDS.masks[0], IDS.masks[1], IDS.masks[2], IDS.eom
    a, b, c, d1, d2, e = 301, 302, 303, 304, 305, 306
    completed = [0, a, m0, c, m1, e, m2, m0, b, eom, m1, d1, d2, eom]
    assert restore(completed, IDS) == [0, a, b, c, d1, d2, e]


def test_long_documents_are_chunked_then_masked_and_every_chunk_fits():
    context = 64
    doc = np.concatenate([[IDS.bos], np.arange(1000, 1000 + 500)])
    bounds = chunk_bounds(len(doc), context)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(doc)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(end - start <= chunk_length(context) for start, end in bounds)
    pieces = []
    for i, (start, end) in enumerate(bounds):
        masked, _ = mask_chunk(doc[start:end], random.Random(i), IDS, context)
        assert len(masked) <= context
        pieces += restore(masked, IDS)
    assert pieces == doc.tolist()


def test_masking_is_a_function_of_the_seed_alone():
    doc = np.arange(1000, 1200)
    a = masked_document(doc, 11)[0]
    assert np.array_equal(a, masked_document(doc, 11)[0])
    assert any(not np.array_equal(a, masked_document(doc, s)[0]) for s in range(12, 20))
