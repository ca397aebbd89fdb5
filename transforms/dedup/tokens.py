"""Alphanumeric tokens: what exact dedup keys on and near-dedup shingles.

Kept free of Beam, so that a process that only needs the tokens (datatrove's side of
bench/bench_near_dedup.py) does not load the runner.
"""

from __future__ import annotations

import re
import string

import numpy as np

_WORD_RUNS = re.compile(r"\W+")
_NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
_ASCII_WORD = frozenset((string.ascii_letters + string.digits + "_").encode())
# ASCII bytes that are not word characters become spaces; bytes of non-ASCII characters stay.
SPACE = 0x20
_ASCII_TO_SPACES = bytes(b if b in _ASCII_WORD or b >= 0x80 else SPACE for b in range(256))


def alnum_tokens(text: str) -> bytes:
    """The text's alphanumeric tokens (maximal runs of letters, digits, underscores), separated
    by runs of spaces: what exact dedup keys on and near-dedup shingles.

    The same tokens as the regex `\\w+`, found at C speed: ASCII separators
    become spaces by a byte translation, and only the runs of non-ASCII characters (whole
    UTF-8 sequences, since no ASCII byte occurs inside one) go through the regex.
    """
    data = text.encode("utf-8", "surrogatepass").translate(_ASCII_TO_SPACES)
    if len(data) == len(text):  # ASCII only
        return data
    return _NON_ASCII_RUN.sub(_separate_non_word, data)


def _separate_non_word(run: re.Match) -> bytes:
    """A run of non-ASCII characters with its non-word characters made spaces."""
    return _WORD_RUNS.sub(" ", run.group().decode("utf-8", "surrogatepass")).encode("utf-8", "surrogatepass")


def joined_tokens(tokens: bytes) -> tuple[int, bytes]:
    """(how many tokens, the tokens joined by single spaces) of `alnum_tokens`' output: what
    `len(tokens.split())` and `b" ".join(tokens.split())` give, without a bytes object per token
    (numpy masks: a byte is kept if it is a token's or the space just before a token after the first)."""
    buf = np.frombuffer(tokens, dtype=np.uint8)
    word = buf != SPACE
    word_bytes = int(np.count_nonzero(word))
    if not word_bytes:
        return 0, b""
    keep = word.copy()
    keep[:-1] |= word[1:]
    keep[: int(np.argmax(word))] = False
    joined = buf[keep].tobytes()
    return len(joined) - word_bytes + 1, joined
