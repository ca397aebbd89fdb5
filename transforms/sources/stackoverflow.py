"""StackOverflow source: Posts.xml and Comments.xml of a Stack Exchange data dump.

Each table is one XML file, `<posts>` or `<comments>`, holding one empty `<row .../>`
element per record. The files are read plain, or straight out of the site's .7z
archives (py7zr), and streamed: a row is parsed as soon as its bytes are in and then
dropped, so memory is bounded by a read block plus the longest row
(`stackoverflow.max_row_bytes`), never by the file (the real Posts.xml is ~100 GB).

Splitting. In these files a raw `<` byte only ever starts markup: inside attribute
values it is escaped as `&lt;`, and UTF-8 never uses the byte inside a multi-byte
character. So a byte range finds its first row by seeking to its start and scanning
for `<row`, and range [start, end) reads exactly the rows whose `<` lies in it. Plain
XML files are split into `stackoverflow.range_bytes` ranges that workers read in
parallel; a .7z member cannot be entered mid-stream, so one worker reads it whole.

Rows are parsed one at a time by an incremental parser (`xml.etree`'s XMLPullParser)
that is rebuilt after a broken row, so one bad row costs only itself. Stage
"stackoverflow-read" rejects, by reason:
  broken-xml      a row that is not well-formed XML (unclosed, bad escape, not UTF-8)
  too-large       a row longer than `max_row_bytes` (skipped unparsed)
  malformed-row   Id, PostTypeId, PostId or Score missing or not an integer, an answer
                  without ParentId, a question without Title, a comment without Text
  deleted         a row with a DeletionDate (dumps that include deleted posts)
  post-type       posts other than questions and answers (tag wikis, nominations, ...)
  unreadable-file a file or archive that cannot be opened or decompressed: one record
                  for what is left of the range; the rest of the dump is still read
"""

from __future__ import annotations

import math
import posixpath
import queue
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterator

import apache_beam as beam
import py7zr
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from py7zr.io import Py7zIO, WriterFactory

from schemas.records import Rejected, StackComment, StackPost, record_id
from transforms.base import REJECTED, TALLY, Tally

STAGE = "stackoverflow-read"
SOURCE = "stackoverflow"
POSTS = "Posts.xml"
COMMENTS = "Comments.xml"
TABLES = (POSTS, COMMENTS)
ARCHIVE_EXT = ".7z"
READ_BLOCK = 1 << 20  # bytes read (or handed over from the decompressor) at a time
_ROW_START = re.compile(rb"<row[\s/>]")
_TAG_NAMES = re.compile(r"<([^<>]+)>")


class DumpError(ValueError):
    """A dump path that does not hold a readable dump; the message says what is missing."""


class UnreadableFile(RuntimeError):
    """A file or archive member failed while being read."""


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
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f, py7zr.SevenZipFile(f) as z:
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
    matched = FileSystems.match([path])[0].metadata_list
    return matched[0].size_in_bytes if matched else None


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
        plain = FileSystems.join(path, table)
        size = file_size(plain)
        if size is not None:
            files.append(DumpFile(site, table, plain, size))
            continue
        stem = table[: -len(".xml")]
        archives = sorted(m.path for m in FileSystems.match([FileSystems.join(path, f"*-{stem}{ARCHIVE_EXT}")])[0].metadata_list)
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
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
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
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f, py7zr.SevenZipFile(f) as z:
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


def row_pieces(blocks: Iterator[bytes], start: int, end: float, max_row_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(offset, bytes) of every `<row` whose `<` lies in [start, end).

    `blocks` is the file from `start` on. A piece runs from its `<` to the next `<` (or
    the end of the file), so it holds one row and the whitespace after it. A piece longer
    than `max_row_bytes` comes as (offset, None), and is never held whole in memory.
    """
    buf = bytearray()
    base = start  # file offset of buf[0]
    piece = None  # offset in buf where the current piece starts; None before the first `<`
    oversize: int | None = None  # file offset of a row being skipped as too large
    for block in blocks:
        scan = len(buf)
        buf += block
        while (lt := buf.find(b"<", scan)) >= 0:
            if oversize is not None:
                yield oversize, None
                oversize = None
            elif piece is not None and _ROW_START.match(buf, piece):
                yield base + piece, bytes(buf[piece:lt]) if lt - piece <= max_row_bytes else None
            if base + lt >= end:
                return
            piece, scan = lt, lt + 1
        keep = piece if piece is not None else len(buf)
        del buf[:keep]
        base += keep
        piece = 0 if piece is not None else None
        if piece is not None and len(buf) > max_row_bytes:
            if _ROW_START.match(buf):
                oversize = base
            base += len(buf)
            buf.clear()
            piece = None
    if oversize is not None:
        yield oversize, None
    elif piece is not None and _ROW_START.match(buf, piece):
        yield base + piece, bytes(buf[piece:]) if len(buf) - piece <= max_row_bytes else None


class BrokenRow(ValueError):
    """A row that is not well-formed XML."""


class RowParser:
    """Parses `<row .../>` pieces with one incremental parser, rebuilt after a broken row."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.parser.feed(b"<rows>")  # a stand-in root, so rows parse as its children
        ((_, self.root),) = self.parser.read_events()

    def attributes(self, piece: bytes) -> dict[str, str]:
        try:
            self.parser.feed(piece)
            ends = [el for event, el in self.parser.read_events() if event == "end"]
        except ET.ParseError as e:
            self._reset()
            raise BrokenRow(str(e)) from None
        if len(ends) != 1:
            self._reset()
            raise BrokenRow("the row is not closed")
        attrs = dict(ends[0].attrib)
        self.root.clear()  # drop the parsed row: memory stays flat
        return attrs


# ---- rows to records ---------------------------------------------------------------------


class MalformedRow(ValueError):
    pass


def parse_tags(value: str) -> tuple[str, ...]:
    """`<python><django>` (current dumps) or `|python|django|` (2023-on dumps) → ("python", "django")."""
    value = value.strip()
    if value.startswith("<"):
        return tuple(_TAG_NAMES.findall(value))
    if value.startswith("|"):
        return tuple(t for t in value.split("|") if t)
    return tuple(value.split())


def int_attr(attrs: dict, name: str, required: bool = True) -> int | None:
    value = attrs.get(name)
    if value is None:
        if required:
            raise MalformedRow(f"no {name}")
        return None
    try:
        return int(value)
    except ValueError:
        raise MalformedRow(f"{name}={value[:40]!r} is not an integer") from None


def post_from_row(site: str, attrs: dict) -> StackPost:
    post_id = int_attr(attrs, "Id")
    post_type = int_attr(attrs, "PostTypeId")
    parent_id = int_attr(attrs, "ParentId", required=False)
    if post_type == StackPost.ANSWER and parent_id is None:
        raise MalformedRow(f"answer {post_id} has no ParentId")
    if post_type == StackPost.QUESTION and "Title" not in attrs:
        raise MalformedRow(f"question {post_id} has no Title")
    return StackPost(
        id=StackPost.make_id(site, post_id),
        site=site,
        post_id=post_id,
        post_type=post_type,
        parent_id=parent_id if post_type == StackPost.ANSWER else None,
        score=int_attr(attrs, "Score"),
        creation_date=attrs.get("CreationDate", ""),
        title=attrs.get("Title", ""),
        tags=parse_tags(attrs.get("Tags", "")),
        body=attrs.get("Body", ""),
    )


def comment_from_row(site: str, attrs: dict) -> StackComment:
    comment_id = int_attr(attrs, "Id")
    if "Text" not in attrs:
        raise MalformedRow(f"comment {comment_id} has no Text")
    return StackComment(
        id=StackComment.make_id(site, comment_id),
        site=site,
        comment_id=comment_id,
        post_id=int_attr(attrs, "PostId"),
        score=int_attr(attrs, "Score", required=False) or 0,
        creation_date=attrs.get("CreationDate", ""),
        text=attrs.get("Text", ""),
    )


def reject(file: DumpFile, offset: int, reason: str, detail: str, row_id: str = "") -> Rejected:
    """A row that is not read: its id is the record's when the row has an Id, else its place."""
    if row_id:
        rid = (StackPost.make_id if file.table == POSTS else StackComment.make_id)(file.site, row_id)
    else:
        rid = record_id(SOURCE, file.site, file.table, str(offset))
    where = f"{file.table} row{f' Id={row_id}' if row_id else ''} at byte {offset}"
    return Rejected(rid, STAGE, reason, f"{where}{detail}"[:500], SOURCE, file.site, file.table)


def record_from_row(file: DumpFile, offset: int, attrs: dict) -> StackPost | StackComment | Rejected:
    """One parsed row → a StackPost / StackComment, or a Rejected saying why not."""
    row_id = attrs.get("Id", "")
    if "DeletionDate" in attrs:
        return reject(file, offset, "deleted", f": deleted {attrs['DeletionDate']}", row_id)
    try:
        if file.table == COMMENTS:
            return comment_from_row(file.site, attrs)
        post = post_from_row(file.site, attrs)
    except MalformedRow as e:
        return reject(file, offset, "malformed-row", f": {e}", row_id)
    if post.post_type not in (StackPost.QUESTION, StackPost.ANSWER):
        return reject(file, offset, "post-type", f": PostTypeId={post.post_type} is not a question or answer", row_id)
    return post


def read_range(r: DumpRange, max_row_bytes: int) -> Iterator[StackPost | StackComment | Rejected]:
    """Every row of a range as a record or a Rejected; a read failure ends the range with one Rejected."""
    f = r.file
    parser = RowParser()
    rows = 0
    try:
        if f.member:  # read whole: its size may be unknown (a damaged header)
            blocks, end = archive_blocks(f.path, f.member), math.inf
        else:
            blocks, end = plain_blocks(f.path, r.start), r.end
        for offset, piece in row_pieces(blocks, r.start, end, max_row_bytes):
            rows += 1
            if piece is None:
                yield reject(f, offset, "too-large", f" is over {max_row_bytes} bytes")
                continue
            try:
                attrs = parser.attributes(piece)
            except BrokenRow as e:
                yield reject(f, offset, "broken-xml", f": {e}")
                continue
            yield record_from_row(f, offset, attrs)
    except (OSError, UnreadableFile) as e:
        where = f"{f.path}{'!' + f.member if f.member else ''} bytes {r.start}-{r.end}"
        rid = record_id(SOURCE, f.site, f.table, f.path, str(r.start), "unreadable")
        detail = f"{where}, after {rows} rows: {type(e).__name__}: {e}"
        yield Rejected(rid, STAGE, "unreadable-file", detail[:500], SOURCE, f.site, f.table)


# ---- Beam --------------------------------------------------------------------------------


class ReadDumpRangeFn(beam.DoFn):
    """Reads one byte range per element: StackPost/StackComment out, Rejected and tallies tagged."""

    def __init__(self, max_row_bytes: int):
        self.max_row_bytes = max_row_bytes

    def setup(self):
        self.tally = Tally(STAGE)

    def process(self, r: DumpRange):
        for out in read_range(r, self.max_row_bytes):
            self.tally.add_in()
            yield self.tally.route(out)

    def finish_bundle(self):
        yield from self.tally.drain()


class ReadStackExchangeDump(beam.PTransform):
    """Dump byte ranges → StackPost and StackComment (main, "kept"), Rejected and tallies."""

    def __init__(self, ranges: list[DumpRange], max_row_bytes: int):
        super().__init__()
        self.ranges = ranges
        self.max_row_bytes = max_row_bytes

    def expand(self, pbegin):
        return (
            pbegin
            | "ListRanges" >> beam.Create(self.ranges)
            | "SpreadRanges" >> beam.Reshuffle()
            | "ReadRows" >> beam.ParDo(ReadDumpRangeFn(self.max_row_bytes)).with_outputs(REJECTED, TALLY, main="kept")
        )
