"""Fuzzing the StackOverflow row reader (transforms/stackoverflow/source.py): any rows, any splits."""

from __future__ import annotations

import os
import tempfile
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.records import Rejected, StackComment, StackPost
from tests.fuzz.fuzz_settings import FUZZ
from transforms.stackoverflow.dump_files import find_dump_files, split_ranges
from transforms.stackoverflow.source import read_range

pytestmark = pytest.mark.slow  # fuzzing

SITE = "fuzz.example"
MAX_ROW_BYTES = 4096


def xml_char(c: str) -> bool:
    """Characters XML 1.0 allows in a document."""
    return c in "\t\n\r" or (0x20 <= ord(c) <= 0xD7FF) or (0xE000 <= ord(c) <= 0xFFFD) or ord(c) >= 0x10000


xml_text = st.text(st.characters(codec="utf-8").filter(xml_char), max_size=40)
tag_names = st.lists(st.from_regex(r"[a-z0-9.+#-]{1,8}", fullmatch=True), max_size=4)


@st.composite
def post_rows(draw, post_id: int):
    """(row attributes, the StackPost the reader must make of them)."""
    post_type = draw(st.sampled_from([1, 1, 2, 2, 3]))
    parent = draw(st.integers(1, 10**6)) if post_type == 2 else None
    tags = draw(tag_names)
    attrs = {"Id": str(post_id), "PostTypeId": str(post_type), "Score": str(draw(st.integers(-(10**6), 10**6)))}
    attrs.update(CreationDate=draw(xml_text), Body=draw(xml_text), Title=draw(xml_text), Tags="".join(f"<{t}>" for t in tags))
    if parent is not None:
        attrs["ParentId"] = str(parent)
    expected = StackPost(
        StackPost.make_id(SITE, post_id),
        SITE,
        post_id,
        post_type,
        parent,
        int(attrs["Score"]),
        attrs["CreationDate"],
        attrs["Title"],
        tuple(tags),
        attrs["Body"],
    )
    return attrs, expected if post_type in (1, 2) else ("post-type", post_id)


garbage = st.binary(max_size=60).map(lambda b: b"<row " + b.replace(b"<", b"").replace(b">", b"") + b" />")


@st.composite
def dumps(draw):
    """Posts.xml bytes: good rows (with the records expected) and garbage rows (any bytes), in any order."""
    rows, expected = [], {}
    for i in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 3)) == 0:
            rows.append(draw(garbage))
        else:
            attrs, record = draw(post_rows(1000 + i))
            rows.append(b"<row " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()).encode() + b" />")
            expected[1000 + i] = record
    spaces = draw(st.lists(st.sampled_from([b"\n", b"\r\n", b"  ", b"\n\t"]), min_size=len(rows), max_size=len(rows)))
    data = b'<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + b"".join(r + s for r, s in zip(rows, spaces)) + b"</posts>\n"
    return data, len(rows), expected


@pytest.fixture(scope="module")
def dump_dir():
    with tempfile.TemporaryDirectory() as root:
        folder = os.path.join(root, SITE)
        os.makedirs(folder)
        with open(os.path.join(folder, "Comments.xml"), "wb") as f:
            f.write(b"<comments>\n</comments>\n")
        yield folder


def read(folder: str, range_bytes: int) -> list:
    ranges = [r for r in split_ranges(find_dump_files(folder), range_bytes) if r.file.table == "Posts.xml"]
    return [record for r in ranges for record in read_range(r, MAX_ROW_BYTES)]


def comparable(record):
    """A record, or a rejected row's id, reason and place: the parser's message quotes a line
    and column within the rows it has read so far, which depend on where the range began."""
    if isinstance(record, Rejected):
        return record.id, record.reason, record.detail.split(":")[0]
    return record


@FUZZ
@given(dumps(), st.integers(1, 400))
def test_every_row_gives_one_record_whatever_the_bytes_and_the_split(dump_dir, dump, range_bytes):
    data, rows, expected = dump
    with open(os.path.join(dump_dir, "Posts.xml"), "wb") as f:
        f.write(data)
    whole = read(dump_dir, 1 << 20)
    assert len(whole) == rows
    assert [comparable(r) for r in read(dump_dir, range_bytes)] == [comparable(r) for r in whole]
    by_id = {r.post_id: r for r in whole if isinstance(r, StackPost)}
    for post_id, record in expected.items():
        if isinstance(record, StackPost):
            assert by_id[post_id] == record
        else:
            (rejected,) = [r for r in whole if isinstance(r, Rejected) and r.id == StackPost.make_id(SITE, post_id)]
            assert rejected.reason == record[0]
    for record in whole:
        if isinstance(record, Rejected):
            assert record.stage == "stackoverflow-read" and record.detail.encode("utf-8")
        else:
            assert isinstance(record, (StackPost, StackComment))
