"""Whether a file's bytes are text, and how many a source reads: every source judges files the same way.

Kept free of Beam, so that a process that only needs the test (datatrove's side of
bench/bench_peer.py) does not load the runner.
"""

from __future__ import annotations

import posixpath

BINARY_SNIFF_BYTES = 8192  # a NUL byte in this prefix marks a file as binary, as git does
NOTEBOOK_EXT = ".ipynb"


def is_notebook_path(path: str) -> bool:
    return posixpath.splitext(posixpath.basename(path))[1].lower() == NOTEBOOK_EXT


def size_limit(path: str, max_file_bytes: int, max_notebook_bytes: int | None) -> int:
    """The most bytes of `path` a source keeps: read.max_notebook_bytes for a notebook (its JSON
    carries outputs, images as base64, that the notebooks stage drops), else read.max_file_bytes."""
    if max_notebook_bytes is not None and is_notebook_path(path):
        return max_notebook_bytes
    return max_file_bytes


def decode_file(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for a UTF-8 text file, else (None, reason)."""
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"not-utf8:{e.start}"
