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
  not-xml         an archive member that is not UTF-8 XML (compressed again, UTF-16):
                  one record for the table (a plain file like that fails before the run)
"""

from __future__ import annotations

import math
from typing import Iterator

import apache_beam as beam

from schemas import stage_names
from schemas.records import Rejected, StackComment, StackPost, record_id
from transforms.base import ApplyStage, RecordFn
from transforms.stackoverflow.dump_files import (
    COMMENTS,
    POSTS,
    SOURCE,
    DumpFile,
    DumpRange,
    NotXml,
    UnreadableFile,
    archive_blocks,
    checked_head,
    plain_blocks,
)
from transforms.stackoverflow.dump_rows import BrokenRow, MalformedRow, RowParser, comment_from_row, post_from_row, row_pieces


def reject(file: DumpFile, offset: int, reason: str, detail: str, row_id: str = "") -> Rejected:
    """A row that is not read: its id is the record's when the row has an Id, else its place."""
    if row_id:
        rid = (StackPost.make_id if file.table == POSTS else StackComment.make_id)(file.site, row_id)
    else:
        rid = record_id(SOURCE, file.site, file.table, str(offset))
    where = f"{file.table} row{f' Id={row_id}' if row_id else ''} at byte {offset}"
    return Rejected(rid, stage_names.STACKOVERFLOW_READ, reason, f"{where}{detail}"[:500], SOURCE, file.site, file.table)


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
        if r.start == 0:
            blocks = checked_head(blocks)
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
        reason = "not-xml" if isinstance(e, NotXml) else "unreadable-file"
        yield Rejected(rid, stage_names.STACKOVERFLOW_READ, reason, detail[:500], SOURCE, f.site, f.table)


# ---- Beam --------------------------------------------------------------------------------


class ReadDumpRangeFn(RecordFn):
    """One byte range in; each of its rows is one read (StackPost/StackComment kept, or Rejected)."""

    stage = stage_names.STACKOVERFLOW_READ
    each_output_is_an_input = True

    def __init__(self, max_row_bytes: int):
        self.max_row_bytes = max_row_bytes

    def __call__(self, r: DumpRange):
        return read_range(r, self.max_row_bytes)


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
            | "ReadRows" >> ApplyStage(ReadDumpRangeFn(self.max_row_bytes))
        )
