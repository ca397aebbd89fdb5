"""Causal masking (paper §2.1): the training objective's data transform.

A training sequence is one chunk of one document. Some spans of it are cut out,
each replaced by a sentinel `<|mask:k|>`, and appended at the end as
`<|mask:k|> span <|endofmask|>`, in order:

    Left <|mask:0|> Right <|mask:0|> Span <|endofmask|>          (one span, the paper's eq. 1)

The loss covers every token except the sentinels, so the model never learns to emit
one (§2.1, last sentence).

Sampling, as §2.1 states it: the number of spans k ~ Poisson(1) truncated to
[1, 256]; each span's length is uniform over 1..N (N = tokens that may be masked)
and its start uniform over the places it fits; a set with overlapping spans is
rejected and resampled. Plain rejection needs ~10^4 tries for k = 5 and is hopeless
beyond, so `sample_spans` draws from the same distribution directly: an ordered set
of disjoint spans is drawn with probability proportional to prod_i 1/(N - L_i + 1)
(the chance of the starts), which factorises into the total masked length T, the
lengths given T, and the gaps given T (uniform). The tests check it against the
rejection sampler.

Two limits the paper leaves open, fixed here:
  * documents longer than the context are chunked first, then each chunk is masked
    on its own. A chunk holds at most `context - 3 * FULL_CHUNK_SPANS` tokens, so
    k is truncated to [1, min(256, N, room // 3)], where room is what the context has
    left after the chunk: for a full chunk that is 8 spans (P(k > 8) ~ 1e-5), for
    a document of up to context - 768 tokens the paper's full [1, 256].
  * a leading `<|endoftext|>` (the document-start token every document carries)
    stays in place and is never masked: inference prompts begin with it too.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import math
import random
from typing import Sequence

import numpy as np

MAX_SPANS = 256  # §2.1: the number of spans is truncated to [1, 256]
POISSON_MEAN = 1.0  # §2.1
SPAN_OVERHEAD = 3  # tokens a span adds: the in-place sentinel, the moved sentinel, <|endofmask|>
FULL_CHUNK_SPANS = 8  # spans a full-length chunk has room for (see module docstring)


@dataclasses.dataclass(frozen=True)
class SpecialIds:
    """Token ids the objective uses, read from the tokenizer."""

    bos: int  # <|endoftext|>: starts every document
    pad: int
    eom: int
    masks: tuple[int, ...]  # <|mask:0|> ... <|mask:255|>

    @functools.cached_property
    def _sentinel_table(self) -> np.ndarray:
        table = np.zeros(max(self.masks) + 2, dtype=bool)  # the last entry stands for every larger id
        table[list(self.masks)] = True
        return table

    def is_sentinel(self, token_ids: np.ndarray) -> np.ndarray:
        """Elementwise: is the token a mask sentinel?"""
        table = self._sentinel_table
        return table[np.minimum(token_ids, len(table) - 1)]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialIds":
        from tokenizer_training.tokenizer import EOM, EOT, MASKS, PAD

        ids = tokenizer.convert_tokens_to_ids([EOT, PAD, EOM, *MASKS])
        unk = tokenizer.unk_token_id
        missing = [t for t, i in zip([EOT, PAD, EOM, *MASKS], ids) if i is None or (unk is not None and i == unk)]
        if missing:
            raise ValueError(f"the tokenizer lacks special token(s) {missing[:4]}; rebuild it with the tokenizer stage")
        return cls(bos=ids[0], pad=ids[1], eom=ids[2], masks=tuple(ids[3:]))


def chunk_length(context_length: int) -> int:
    """Most tokens of a document one training sequence takes, leaving room for the spans."""
    return context_length - SPAN_OVERHEAD * FULL_CHUNK_SPANS


def chunk_bounds(n_tokens: int, context_length: int) -> list[tuple[int, int]]:
    """[start, end) of each chunk of a document of `n_tokens` (the last may be short)."""
    size = chunk_length(context_length)
    return [(start, min(start + size, n_tokens)) for start in range(0, n_tokens, size)]


@functools.lru_cache(maxsize=None)
def _count_cdf(k_max: int) -> tuple[float, ...]:
    """Cumulative P(k) for k = 1..k_max under Poisson(1) truncated to [1, k_max]."""
    pmf = [math.exp(k * math.log(POISSON_MEAN) - POISSON_MEAN - math.lgamma(k + 1)) for k in range(1, k_max + 1)]
    total = sum(pmf)
    return tuple(itertools.accumulate(p / total for p in pmf))


def sample_span_count(rng: random.Random, k_max: int) -> int:
    """k ~ Poisson(1) truncated to [1, k_max] (inverse CDF)."""
    if k_max < 1:
        raise ValueError(f"k_max must be at least 1, got {k_max}")
    cdf = _count_cdf(min(k_max, MAX_SPANS))
    u = rng.random()
    for k, c in enumerate(cdf, start=1):
        if u < c:
            return k
    return len(cdf)


@functools.lru_cache(maxsize=256)
def _length_tables(n: int, k: int) -> tuple[np.ndarray, ...]:
    """W_j(T) for j = 0..k, T = 0..n: the total weight of j span lengths summing to T.

    The weight of a length L is w(L) = 1/(n - L + 1), the probability of any one
    start; W_j = W_{j-1} * w (convolution). Each table is scaled to max 1: only
    ratios within one table are ever used.
    """
    w = np.zeros(n + 1)
    w[1:] = 1.0 / (n - np.arange(1, n + 1) + 1)
    tables = [np.eye(1, n + 1).ravel()]  # W_0: all weight at T = 0
    for _ in range(k):
        nxt = np.convolve(tables[-1], w)[: n + 1]
        tables.append(nxt / nxt.max())
    return tuple(tables)


@functools.lru_cache(maxsize=256)
def _total_length_cdf(n: int, k: int) -> tuple[float, ...]:
    """CDF over T = 0..n of the total masked length of k disjoint spans.

    P(T) ~ W_k(T) * C(n - T + k, k): the second factor counts the ways to lay the
    n - T unmasked tokens into the k + 1 gaps around the spans.
    """
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + k + 1)))])
    gaps = n - np.arange(n + 1)  # unmasked tokens for each T
    log_ways = log_fact[gaps + k] - log_fact[gaps] - log_fact[k]
    with np.errstate(divide="ignore"):
        log_p = np.log(_length_tables(n, k)[k]) + log_ways
    p = np.exp(log_p - log_p.max())
    return tuple(np.cumsum(p).tolist())


@functools.lru_cache(maxsize=256)  # tuples of up to a chunk's length: a few MB at most
def _last_length_cdf(n: int, k: int, j: int, remaining: int) -> tuple[float, ...]:
    """Cumulative weights of the j-th span's length 1..remaining - (j - 1), given the j spans sum to `remaining`."""
    candidates = np.arange(1, remaining - (j - 1) + 1)
    weights = _length_tables(n, k)[j - 1][remaining - candidates] / (n - candidates + 1)
    return tuple(np.cumsum(weights).tolist())


def _draw(rng: random.Random, cumulative: Sequence[float]) -> int:
    """Index of the bin a uniform draw falls in (np.searchsorted(side="right") on the same floats)."""
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def sample_spans(rng: random.Random, n: int, k: int) -> list[tuple[int, int]]:
    """k disjoint [start, end) spans of 0..n, sorted, distributed as §2.1's rejection sampler."""
    if not 1 <= k <= n:
        raise ValueError(f"cannot place {k} non-empty disjoint spans in {n} tokens")
    if k == 1:  # nothing to reject: the paper's draw as it stands
        length = rng.randint(1, n)
        start = rng.randint(0, n - length)
        return [(start, start + length)]
    total = _draw(rng, _total_length_cdf(n, k))
    lengths = []
    remaining = total
    for j in range(k, 0, -1):  # the last span's length given the others sum to the rest
        length = 1 + _draw(rng, _last_length_cdf(n, k, j, remaining))
        lengths.append(length)
        remaining -= length
    lengths.reverse()
    # The n - total unmasked tokens split uniformly into k + 1 gaps (stars and bars).
    bars = sorted(rng.sample(range(n - total + k), k))
    gaps = [bars[0]] + [bars[i] - bars[i - 1] - 1 for i in range(1, k)]
    spans, pos = [], 0
    for gap, length in zip(gaps, lengths):
        pos += gap
        spans.append((pos, pos + length))
        pos += length
    return spans


def apply_masks(tokens: Sequence[int], spans: Sequence[tuple[int, int]], ids: SpecialIds) -> tuple[np.ndarray, np.ndarray]:
    """(masked ids, target flags) for sorted disjoint spans: eq. (1) of §2.1, one span after another.

    target[i] is False exactly where masked[i] is a mask sentinel.
    """
    tokens = np.asarray(tokens, dtype=np.int64).tolist()
    body, tail, pos = [], [], 0
    for k, (start, end) in enumerate(spans):
        body += tokens[pos:start]
        body.append(ids.masks[k])
        tail.append(ids.masks[k])
        tail += tokens[start:end]
        tail.append(ids.eom)
        pos = end
    masked = np.array(body + tokens[pos:] + tail, dtype=np.int64)
    return masked, ~ids.is_sentinel(masked)


def restore(masked: Sequence[int], ids: SpecialIds) -> list[int]:
    """The document a masked sequence stands for: each sentinel replaced by its span.

    Reads the layout `apply_masks` writes, and the completed infill prompts of §2.2
    (`A <M0> C <M1> E <M2> <M0> B <|endofmask|> <M1> D <|endofmask|>`; a sentinel with no moved span,
    such as the final <M2> there, is dropped).
    """
    masked = [int(t) for t in masked]
    sentinel_index = {m: k for k, m in enumerate(ids.masks)}
    first_seen: dict[int, int] = {}
    tail_start = len(masked)
    for i, t in enumerate(masked):
        if t in sentinel_index:
            if t in first_seen:
                tail_start = i
                break
            first_seen[t] = i
    spans: dict[int, list[int]] = {}
    current = None
    for t in masked[tail_start:]:
        if current is None:
            if t not in sentinel_index:
                raise ValueError(f"expected a mask sentinel after a moved span, got token {t}")
            current = t
            spans[current] = []
        elif t == ids.eom:
            current = None
        else:
            spans[current].append(t)
    out = []
    for t in masked[:tail_start]:
        if t in sentinel_index:
            out += spans.get(t, [])
        else:
            out.append(t)
    return out


def mask_chunk(chunk: Sequence[int], rng: random.Random, ids: SpecialIds, context_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Causal-mask one chunk (at most `chunk_length(context_length)` tokens).

    A leading <|endoftext|> stays in place. Returns (ids, target flags), at most
    `context_length` long.
    """
    chunk = np.asarray(chunk, dtype=np.int64)
    keep = 1 if len(chunk) and chunk[0] == ids.bos else 0
    n = len(chunk) - keep
    if n == 0:
        return chunk, np.ones(len(chunk), dtype=bool)
    room = (context_length - len(chunk)) // SPAN_OVERHEAD
    if room < 1:
        raise ValueError(f"a chunk of {len(chunk)} tokens leaves no room for a span in {context_length}")
    k = sample_span_count(rng, min(MAX_SPANS, n, room))
    masked, targets = apply_masks(chunk[keep:], sample_spans(rng, n, k), ids)
    return np.concatenate([chunk[:keep], masked]), np.concatenate([np.ones(keep, dtype=bool), targets])
