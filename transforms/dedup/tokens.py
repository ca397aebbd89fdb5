"""Alphanumeric tokens: what exact dedup keys on and near-dedup shingles.

Kept free of Beam, so that a process that only needs the tokens (datatrove's side of
bench/bench_near_dedup.py) does not load the runner.
"""

from __future__ import annotations

import re
import string

_WORD = re.compile(r"\w+")
_ASCII_WORD = frozenset((string.ascii_letters + string.digits + "_").encode())
_ASCII_TO_SPACES = bytes(b if b in _ASCII_WORD else 0x20 for b in range(256))


def alnum_tokens(text: str) -> bytes:
    """The text's alphanumeric tokens (maximal runs of letters, digits, underscores), separated
    by runs of spaces: what exact dedup keys on and near-dedup shingles."""
    if text.isascii():  # same tokens as the regex, split at C speed
        return text.encode("ascii").translate(_ASCII_TO_SPACES)
    return " ".join(_WORD.findall(text)).encode("utf-8")
