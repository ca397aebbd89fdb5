"""Stack Exchange dump files: finding Posts.xml and Comments.xml (plain or in .7z archives),
splitting plain files into byte ranges, and streaming a range's bytes block by block.

In these files a raw `<` byte only ever starts markup (attribute values escape it as
`&lt;`, and UTF-8 never uses the byte inside a multi-byte character), so a byte range
finds its first row by seeking to its start and scanning for `<row`. A .7z member cannot
be entered mid-stream, so one worker reads it whole.
"""

from __future__ import annotations

import os
import posixpath
import queue
import re
import stat
import threading
from dataclasses import dataclass
from typing import Iterator

import py7zr
from py7zr.io import Py7zIO, WriterFactory

from infra import storage

SOURCE = "stackoverflow"
POSTS = "Posts.xml"
COMMENTS = "Comments.xml"
TABLES = (POSTS, COMMENTS)
ARCHIVE_EXT = ".7z"
READ_BLOCK = 1 << 20  # bytes read (or handed over from the decompressor) at a time


class DumpError(ValueError):
    """A dump path that does not hold a readable dump; the message says what is missing."""


class UnreadableFile(RuntimeError):
    """A file or archive member failed while being read."""


class NotXml(UnreadableFile):
    """A table whose first bytes are not Stack Exchange XML (compressed, another encoding)."""


def checked_head(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """The blocks of a table read from its first byte, after checking they begin as UTF-8 XML."""
    first = True
    for block in blocks:
        if first and block:
            first = False
            reason = not_xml_reason(block[:SNIFF_BYTES])
            if reason:
                raise NotXml(reason)
        yield block


@dataclass(frozen=True)
class DumpFile:
    """One table of one site's dump: a plain XML file, or a member of a .7z archive."""

    site: str
    table: str  # Posts.xml or Comments.xml
    path: str  # the XML file, or the archive
    size: int  # bytes of the XML (uncompressed for an archive member)
    member: str | None = None  # the member's name inside the archive


@dataclass(frozen=True)
class DumpRange:
    """The rows of `file` whose first byte lies in [start, end)."""

    file: DumpFile
    start: int
    end: int


# ---- finding the files of a dump -------------------------------------------------------


def site_name(path: str) -> str:
    """The site a dump path holds: its base name, without `.7z`."""
    name = posixpath.basename(path.rstrip("/"))
    return name[: -len(ARCHIVE_EXT)] if name.endswith(ARCHIVE_EXT) else name


def archive_members(path: str) -> dict[str, int] | None:
    """{member name: uncompressed size} of a .7z archive (reads only its header); None if unreadable."""
    try:
        with storage.open_file(path) as f, py7zr.SevenZipFile(f) as z:
            return {info.filename: info.uncompressed for info in z.list() if not info.is_directory}
    except Exception:  # py7zr raises many types for a damaged archive; reading it reports the error
        return None


def archive_tables(site: str, path: str, tables: tuple[str, ...]) -> list[DumpFile]:
    """The tables' members of an archive. One whose header is damaged is still listed (its
    size unknown), so that reading it yields an `unreadable-file` record instead of
    stopping the run before it starts."""
    members = archive_members(path)
    if members is None:
        return [DumpFile(site, t, path, 0, member=t) for t in tables]
    missing = [t for t in tables if t not in members]
    if missing:
        raise DumpError(f"{path!r} has no {' or '.join(missing)} (members: {sorted(members)[:10]})")
    return [DumpFile(site, t, path, members[t], member=t) for t in tables]


def file_size(path: str) -> int | None:
    """The size of the file at `path`, None if there is none; a local path that is not a regular
    file (a folder, a FIFO, a device) is a DumpError, since reading it would fail or block."""
    if storage.is_local(path):
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return None
        except OSError as e:
            raise DumpError(f"{path!r} cannot be read: {e.strerror}") from None
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
            raise DumpError(f"{path!r} is {what}; a dump table must be a regular file (XML, or a .7z archive)")
    matched = storage.match_metadata(path)
    return matched[0].size_in_bytes if matched else None


SNIFF_BYTES = 4096
MAGIC = {  # what a table that is not plain XML most often is
    b"\x1f\x8b": "gzip-compressed",
    b"BZh": "bzip2-compressed",
    b"\xfd7zXZ\x00": "xz-compressed",
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
    b"7z\xbc\xaf\x27\x1c": "a 7z archive",
    b"PK\x03\x04": "a zip archive",
    b"\xff\xfe": "UTF-16 (little endian)",
    b"\xfe\xff": "UTF-16 (big endian)",
}
DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([^"']+)["']""")


def not_xml_reason(head: bytes) -> str | None:
    """Why the first bytes of a table are not Stack Exchange XML (UTF-8 markup), or None if they may be."""
    for magic, what in MAGIC.items():
        if head.startswith(magic):
            return f"it is {what}, not UTF-8 XML; decompress or convert it first"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        return None  # an empty table holds no rows, which is no error
    if not text.startswith(b"<"):
        return f"it does not start with XML markup (first bytes {head[:16]!r})"
    declared = DECLARED_ENCODING.match(text)
    if declared and declared.group(1).lower().replace(b"-", b"").replace(b"_", b"") != b"utf8":
        return f"it declares encoding {declared.group(1).decode('ascii', 'replace')!r}; dumps are read as UTF-8"
    return None


def check_plain_table(path: str) -> None:
    """Fail before any work on a plain table that is not UTF-8 XML (compressed, another encoding)."""
    with storage.open_file(path) as f:
        reason = not_xml_reason(f.read(SNIFF_BYTES))
    if reason:
        raise DumpError(f"{path!r} is not Stack Exchange XML: {reason}")


def find_dump_files(path: str) -> list[DumpFile]:
    """Posts and Comments of the dump at `path`: a site's .7z, or a folder (see module docstring).

    A folder holds each table as `<table>.xml`, or as `<anything>-<table>.7z` the way the
    stackoverflow.com dump ships its large tables.
    """
    site = site_name(path)
    if path.endswith(ARCHIVE_EXT):
        if file_size(path) is None:
            raise DumpError(f"{path!r} does not exist")
        return archive_tables(site, path, TABLES)
    files = []
    for table in TABLES:
        plain = storage.join(path, table)
        size = file_size(plain)
        if size is not None:
            check_plain_table(plain)
            files.append(DumpFile(site, table, plain, size))
            continue
        stem = table[: -len(".xml")]
        archives = sorted(m.path for m in storage.match_metadata(storage.join(path, f"*-{stem}{ARCHIVE_EXT}")))
        if len(archives) != 1:
            found = f"{len(archives)} *-{stem}{ARCHIVE_EXT} archives" if archives else f"no *-{stem}{ARCHIVE_EXT}"
            raise DumpError(f"{path!r} has no {table} and {found}; expected a dump folder or a site's .7z")
        files.extend(archive_tables(site, archives[0], (table,)))
    return files


def split_ranges(files: list[DumpFile], range_bytes: int) -> list[DumpRange]:
    """Byte ranges of `range_bytes` for plain files; one range per archive member."""
    ranges = []
    for f in files:
        if f.member is not None or f.size == 0:
            ranges.append(DumpRange(f, 0, f.size))
            continue
        ranges.extend(DumpRange(f, start, min(start + range_bytes, f.size)) for start in range(0, f.size, range_bytes))
    return ranges


# ---- streaming bytes and cutting them into rows -----------------------------------------


def plain_blocks(path: str, start: int) -> Iterator[bytes]:
    with storage.open_file(path) as f:
        f.seek(start)
        while block := f.read(READ_BLOCK):
            yield block


_END = object()


class _Stopped(Exception):
    """Raised inside the decompressing thread when the reader has gone away."""


class _QueueWriter(Py7zIO):
    """A py7zr writer that hands each decompressed block to the reading thread."""

    def __init__(self, blocks: queue.Queue, stop: threading.Event):
        self.blocks, self.stop = blocks, stop

    def write(self, data) -> int:
        while not self.stop.is_set():
            try:
                self.blocks.put(bytes(data), timeout=0.1)
                return len(data)
            except queue.Full:
                continue
        raise _Stopped()

    def read(self, size=None) -> bytes:
        return b""

    def seek(self, offset, whence=0) -> int:
        return 0

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return 0


def archive_blocks(path: str, member: str) -> Iterator[bytes]:
    """The bytes of one archive member, decompressed by py7zr in a thread as they are read.

    py7zr pushes decompressed blocks (of up to its own chunk size, 128 MB at most) into a
    writer; a one-slot queue hands them over, so at most two blocks are in memory.
    """
    blocks: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    class Factory(WriterFactory):
        def create(self, filename):
            return _QueueWriter(blocks, stop)

    def put(item) -> None:
        while not stop.is_set():
            try:
                return blocks.put(item, timeout=0.1)
            except queue.Full:
                continue

    def extract() -> None:
        try:
            with storage.open_file(path) as f, py7zr.SevenZipFile(f) as z:
                z.extract(targets=[member], factory=Factory())
            put(_END)
        except _Stopped:
            pass
        except Exception as e:  # a damaged archive raises many types; the reader reports it
            put(UnreadableFile(f"{type(e).__name__}: {e}"))

    thread = threading.Thread(target=extract, name=f"7z:{member}", daemon=True)
    thread.start()
    try:
        while (item := blocks.get()) is not _END:
            if isinstance(item, UnreadableFile):
                raise item
            for i in range(0, len(item), READ_BLOCK):
                yield item[i : i + READ_BLOCK]
    finally:
        stop.set()
        thread.join()
