"""Rows of a dump: cutting a byte stream into `<row .../>` pieces and parsing each into a record.

An incremental parser (`xml.etree`'s XMLPullParser) is rebuilt after a broken row, so one
bad row costs only itself; a row longer than `max_row_bytes` is skipped unparsed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Iterator

from schemas.records import StackComment, StackPost

_ROW_START = re.compile(rb"<row[\s/>]")
_TAG_NAMES = re.compile(r"<([^<>]+)>")


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
