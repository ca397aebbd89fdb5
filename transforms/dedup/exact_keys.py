"""Exact dedup's key of a file: what two files must share to be copies (paper footnote 6).

Kept free of Beam, so that a process that only needs the key (datatrove's side of
bench/bench_peer.py) does not load the runner.
"""

from __future__ import annotations

import hashlib

from transforms.cleaning.language_extensions import extension
from transforms.dedup.tokens import alnum_tokens, joined_tokens


def dedup_key(path: str, text: str) -> str:
    """`<extension>\\t<token count>\\t<md5 of the space-joined alphanumeric tokens>`."""
    count, joined = joined_tokens(alnum_tokens(text))
    return f"{extension(path)}\t{count}\t{hashlib.md5(joined).hexdigest()}"
