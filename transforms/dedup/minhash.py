"""MinHash signatures and LSH band keys of a file, vectorised with numpy.

A file's shingles are the runs of `shingle_tokens` consecutive alphanumeric tokens,
the same tokens exact dedup keys on (`transforms.dedup.tokens`), so whitespace, punctuation
and comment markers do not make two files look different. Nothing here loops over
tokens in Python:

- the tokens, separated by spaces, are hashed all at once: a polynomial hash mod 2^64
  of every token from prefix sums over the bytes;
- a shingle's 64-bit hash mixes its tokens' hashes with one multiply-add per
  position over the whole array, then the splitmix64 finaliser;
- signature value k is min over shingles of ((a_k * x + b_k) mod 2^64) >> 32 for the
  shingle's upper 32 bits x (multiply-add-shift, a strongly universal family), over
  chunks of shingles so memory stays bounded for large files;
- band i's key hashes its `rows` signature values together with i.

Files with fewer tokens than one shingle have no shingles and no signature.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from transforms.dedup.tokens import alnum_tokens

_BASE = np.uint64(0x100000001B3)  # odd, so invertible mod 2^64
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))
_CHUNK = 2048  # shingles per block of the (shingles x permutations) product: 2048 x 256 x 8 B = 4 MiB
EMPTY = np.zeros(0, dtype=np.uint64)


def token_hashes(data: bytes) -> np.ndarray:
    """A 64-bit polynomial hash of each space-separated token: sum of byte_j * B^(j - start), mod 2^64."""
    buf = np.frombuffer(data, dtype=np.uint8)
    is_word = np.concatenate(([False], buf != 0x20, [False]))
    edges = np.flatnonzero(is_word[1:] != is_word[:-1])
    starts, ends = edges[0::2], edges[1::2]
    if not len(starts):
        return EMPTY
    powers = np.cumprod(np.full(len(buf), _BASE, dtype=np.uint64))  # B^1 .. B^n, wrapping
    prefix = np.zeros(len(buf) + 1, dtype=np.uint64)
    np.cumsum(buf * powers, dtype=np.uint64, out=prefix[1:])
    inverse = np.cumprod(np.full(len(buf), _BASE_INVERSE, dtype=np.uint64))  # B^-1 .. B^-n
    return (prefix[ends] - prefix[starts]) * inverse[starts]


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash table is several times slower than a sort here)."""
    values.sort()
    keep = np.empty(len(values), dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64 output bits (in place)."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _odd_constants(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


@dataclasses.dataclass(frozen=True)
class MinHasher:
    """Signatures and band keys for one setting of (shingle size, permutations, bands x rows, seed)."""

    shingle_tokens: int
    permutations: int
    bands: int
    rows: int
    seed: int

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        object.__setattr__(self, "a", rng.integers(0, 2**64, size=self.permutations, dtype=np.uint64, endpoint=False))
        object.__setattr__(self, "b", rng.integers(0, 2**64, size=self.permutations, dtype=np.uint64, endpoint=False))
        object.__setattr__(self, "position_keys", _odd_constants(self.shingle_tokens, self.seed + 1))
        object.__setattr__(self, "row_keys", _odd_constants(self.rows + 1, self.seed + 2))

    def shingles(self, text: str) -> np.ndarray:
        """Sorted distinct 64-bit hashes of the file's shingles (empty if it has too few tokens)."""
        hashes = token_hashes(alnum_tokens(text))
        n = len(hashes) - self.shingle_tokens + 1
        if n < 1:
            return EMPTY
        acc = np.zeros(n, dtype=np.uint64)
        for j, key in enumerate(self.position_keys):
            acc += hashes[j : j + n] * key  # wraps mod 2^64
        return distinct(_mix(acc))

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        """The MinHash signature (uint32, one value per permutation) of a non-empty shingle set."""
        x = (shingles >> np.uint64(32))[:, None]
        least = np.full(self.permutations, np.iinfo(np.uint64).max, dtype=np.uint64)
        for start in range(0, len(x), _CHUNK):
            block = x[start : start + _CHUNK] * self.a  # wraps mod 2^64
            block += self.b
            np.minimum(least, block.min(axis=0), out=least)
        return (least >> np.uint64(32)).astype(np.uint32)  # the shift is monotonic: min, then shift

    def band_keys(self, signature: np.ndarray) -> list[int]:
        """One signed 64-bit key per band: files that share a key agree on that band's `rows` values."""
        rows = signature[: self.bands * self.rows].astype(np.uint64).reshape(self.bands, self.rows)
        acc = (rows * self.row_keys[: self.rows]).sum(axis=1, dtype=np.uint64)
        acc += np.arange(self.bands, dtype=np.uint64) * self.row_keys[self.rows]
        return _mix(acc).view(np.int64).tolist()  # signed: what Beam's integer coder takes


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|A ∩ B| / |A ∪ B| of two sorted distinct shingle-hash arrays."""
    if not len(a) and not len(b):
        return 1.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)
