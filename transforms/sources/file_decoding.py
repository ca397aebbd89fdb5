"""Whether a file's bytes are text: every source judges files the same way.

Kept free of Beam, so that a process that only needs the test (datatrove's side of
bench/bench_peer.py) does not load the runner.
"""

from __future__ import annotations

BINARY_SNIFF_BYTES = 8192  # a NUL byte in this prefix marks a file as binary, as git does


def decode_file(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for a UTF-8 text file, else (None, reason)."""
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"not-utf8:{e.start}"
