"""The MinHash kernels against the stored format written plainly: versions keep these signatures, so the vectorised
code must give the same values, bit for bit, whatever it does to be fast."""

from __future__ import annotations

import random
import threading

import numpy as np

from transforms.dedup.minhash import MinHasher
from transforms.dedup.tokens import alnum_tokens

SETTINGS = dict(shingle_tokens=5, permutations=256, bands=36, rows=7, seed=42)  # the dedup.near defaults
MASK = 2**64 - 1
BASE = 0x100000001B3


def mix(x: int) -> int:
    """splitmix64's finaliser."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def token_hash(token: bytes) -> int:
    """sum of byte_j * BASE^j mod 2^64 (Horner's rule from the last byte)."""
    h = 0
    for byte in reversed(token):
        h = (h * BASE + byte) & MASK
    return h


def odd_constants(n: int, seed: int) -> list[int]:
    return [2 * int(v) + 1 for v in np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.uint64)]


def reference(text: str, shingle_tokens=5, permutations=256, bands=36, rows=7, seed=42):
    """(sorted shingle hashes, signature, band keys) of a text, one Python integer at a time."""
    rng = np.random.default_rng(seed)
    a = [int(v) for v in rng.integers(0, 2**64, size=permutations, dtype=np.uint64, endpoint=False)]
    b = [int(v) for v in rng.integers(0, 2**64, size=permutations, dtype=np.uint64, endpoint=False)]
    position_keys, row_keys = odd_constants(shingle_tokens, seed + 1), odd_constants(rows + 1, seed + 2)
    tokens = [token_hash(token) for token in alnum_tokens(text).split()]
    shingles = sorted(
        {
            mix(sum(tokens[i + j] * key for j, key in enumerate(position_keys)) & MASK)
            for i in range(len(tokens) - shingle_tokens + 1)
        }
    )
    if not shingles:
        return shingles, None, None
    signature = [min(((ak * (s >> 32) + bk) & MASK) >> 32 for s in shingles) for ak, bk in zip(a, b)]
    keys = []
    for band in range(bands):
        values = signature[band * rows : (band + 1) * rows]
        acc = (sum(v * k for v, k in zip(values, row_keys)) + band * row_keys[rows]) & MASK
        keys.append(int(np.uint64(mix(acc)).view(np.int64)))
    return shingles, signature, keys


def texts() -> list[str]:
    rng = random.Random(3)
    words = [f"name_{i}" for i in range(3000)]
    return [
        "",
        "too few tokens",
        "x = foo(1)  # é and 日本語 count as tokens, punctuation does not",
        "\n".join(f"value_{i} = compute_{i}(arg_{i})" for i in range(40)),
        " ".join(rng.choice(words) for _ in range(1400)),  # more shingles than one block of the product
        "z" * 70000 + " tail of a long token",  # longer than the power tables start
        "y" * 300000 + " past the kept tables",  # longer than the tables kept: tables of its own
    ]


def test_shingles_signature_and_band_keys_are_the_stored_format():
    hasher = MinHasher(**SETTINGS)
    for text in texts():
        shingles, signature, keys = reference(text, **SETTINGS)
        got = hasher.shingles(text)
        assert got.dtype == np.uint64 and got.tolist() == shingles, text[:30]
        if signature is not None:
            got_signature = hasher.signature(got)
            assert got_signature.dtype == np.uint32 and got_signature.tolist() == signature, text[:30]
            assert hasher.band_keys(got_signature) == keys, text[:30]


def test_hashers_on_threads_agree_with_one_alone():
    """Each hasher keeps its own scratch block, so hashers on several threads (one per DoFn) give what one gives alone."""
    alone = MinHasher(**SETTINGS)
    rng = random.Random(5)
    docs = [" ".join(f"w{rng.randrange(500)}" for _ in range(rng.randrange(10, 2000))) for _ in range(16)]
    expected = [alone.signature(alone.shingles(d)).tolist() for d in docs]
    results: dict[int, list] = {}

    def sign(worker: int) -> None:
        hasher = MinHasher(**SETTINGS)
        results[worker] = [hasher.signature(hasher.shingles(d)).tolist() for d in docs]

    threads = [threading.Thread(target=sign, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[i] == expected for i in range(4))
