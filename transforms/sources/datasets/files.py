"""Dataset files opened safely: regular files only, and compressed streams read to their trailer.

A dataset folder is written by strangers too. A FIFO blocks the reader that opens it,
a link to `/dev/zero` never ends, a folder named `x.parquet` (as Spark writes them) holds
files rather than rows. So a local path is classified before the run (`local_problem`)
and opened with `O_NONBLOCK`, then checked with `fstat` (`open_raw`): whatever is not a
regular file is a `NotRegularFile`, which the reader turns into one rejection naming
what the path is.

Beam's compressed reader returns end of file when the compressed bytes run out, without
checking that the stream reached its trailer, so a cut `.jsonl.gz` read as complete.
`decompressed_blocks` decompresses `.gz` (every member) and `.zst` (every frame) itself
and raises `TruncatedStream` when the bytes end inside a member or frame.
"""

from __future__ import annotations

import glob
import os
import stat
import zlib
from typing import BinaryIO, Iterator

import zstandard

from infra import storage
from transforms.sources.local.folders import kind_of, os_reason

READ_BLOCK = 1 << 20  # bytes read from a plain file at a time
# Compressed bytes given to a decompressor at a time: its output for one call is not bounded,
# so the input is kept small (64 KiB of gzip expand to 66 MB at most; of zstd, at its best
# ratio, to about 2 GB; real code expands 3-10×, and each line is bounded by max_row_bytes).
INPUT_BLOCK = 64 << 10
GZIP_WBITS = 31  # zlib: a gzip header and trailer


class NotRegularFile(OSError):
    """A dataset path that is not a regular file; `reason` is its rejection's (fifo, device, folder, ...)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class TruncatedStream(EOFError):
    """A compressed stream whose bytes end before its trailer."""


def describe(mode: int) -> str:
    """The rejection reason of a stat mode that is not a regular file."""
    return "folder" if stat.S_ISDIR(mode) else kind_of(mode)


def local_problem(path: str) -> NotRegularFile | None:
    """Why a local path is not a readable regular file (a link to one is), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return NotRegularFile("symlink", "a link to nothing")
        return NotRegularFile("unreadable", "it disappeared after it was listed")
    except OSError as e:
        return NotRegularFile("unreadable", os_reason(e))
    if stat.S_ISREG(mode):
        return None
    link = "a link to " if os.path.islink(path) else ""
    kind = describe(mode)
    hint = "; name the files inside it, e.g. <folder>/*.parquet" if kind == "folder" else ""
    return NotRegularFile(kind, f"{link}a {kind}, not a regular file{hint}")


def local_entries(pattern: str) -> list[str]:
    """Every local entry a glob matches, whatever it is (folders, FIFOs, dangling links included)."""
    return sorted(glob.glob(pattern, recursive=True, include_hidden=True))


def open_raw(path: str) -> BinaryIO:
    """The file's bytes as stored. A local path is opened without blocking and must be a regular file."""
    if not storage.is_local(path):
        return storage.open_file(path)
    local = path[len("file://") :] if path.startswith("file://") else path
    try:
        fd = os.open(local, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except IsADirectoryError:
        raise NotRegularFile("folder", "a folder, not a regular file") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(describe(mode), f"a {describe(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=READ_BLOCK)
    except BaseException:
        os.close(fd)
        raise


def decompressed_blocks(f: BinaryIO, path: str) -> Iterator[bytes]:
    """The file's bytes, decompressed by extension (.gz, .zst) to the end of the last member or frame."""
    name = path.lower()
    if name.endswith(".gz"):
        return gzip_blocks(f)
    if name.endswith(".zst"):
        return zstd_blocks(f)
    return iter(lambda: f.read(READ_BLOCK), b"")


def gzip_blocks(f: BinaryIO) -> Iterator[bytes]:
    """Every member of a gzip stream (zero padding after a member is allowed, as gzip allows it)."""
    return stream_blocks(f, lambda: zlib.decompressobj(GZIP_WBITS), "gzip stream ends before its trailer", b"\0")


def zstd_blocks(f: BinaryIO) -> Iterator[bytes]:
    """Every frame of a zstd stream."""
    return stream_blocks(f, zstandard.ZstdDecompressor().decompressobj, "zstd stream ends inside a frame", None)


def stream_blocks(f: BinaryIO, make, truncated: str, padding: bytes | None) -> Iterator[bytes]:
    """Decompressed blocks of consecutive members (frames), each made by `make()`, checked to end."""
    d, fed = make(), False
    while chunk := f.read(INPUT_BLOCK):
        while chunk:
            if not fed and padding is not None and not chunk.strip(padding):
                break
            fed = True
            block = d.decompress(chunk)
            if block:
                yield block
            chunk = b""
            if d.eof:
                chunk, d, fed = d.unused_data, make(), False
    if fed and not d.eof:
        raise TruncatedStream(f"the {truncated} (a cut file or a partial download)")
