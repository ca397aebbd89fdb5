"""Hostile Stack Exchange dumps: entity bombs, external entities, bad UTF-8, a .7z row bomb."""

from __future__ import annotations

import os

import py7zr
import pytest

from schemas.records import Rejected, StackComment, StackPost
from tests.conftest import peak_python_memory
from tests.hostile.hostile_inputs import SECRET, billion_laughs_dump, make_outside
from transforms.stackoverflow.dump_files import find_dump_files, split_ranges
from transforms.stackoverflow.source import read_range

MAX_ROW_BYTES = 1 << 20


def read_dump(path: str, range_bytes: int = 1 << 20) -> list:
    return [r for rng in split_ranges(find_dump_files(path), range_bytes) for r in read_range(rng, MAX_ROW_BYTES)]


def row_of(record) -> tuple[str, int]:
    """(table, Id) of a record read, (table, byte offset) of a row rejected."""
    if isinstance(record, StackPost):
        return "Posts.xml", record.post_id
    if isinstance(record, StackComment):
        return "Comments.xml", record.comment_id
    return record.path, int(record.detail.split(" at byte ")[1].split(":")[0])


def test_entity_bombs_external_entities_and_bad_utf8_are_broken_rows(tmp_path):
    secret_path = os.path.join(make_outside(str(tmp_path)), "secret.py")
    dump = str(tmp_path / "site.example")
    hostile_rows = billion_laughs_dump(dump, secret_path)
    records, peak = peak_python_memory(lambda: read_dump(dump))
    assert {row_of(r) for r in records if isinstance(r, Rejected)} == hostile_rows
    assert all(r.reason == "broken-xml" for r in records if isinstance(r, Rejected))
    assert {row_of(r) for r in records if not isinstance(r, Rejected)} == {
        ("Posts.xml", 10),
        ("Posts.xml", 11),
        ("Comments.xml", 20),
    }
    assert SECRET not in repr(records) and "lollol" not in repr(records)
    assert peak < 4 * 2**20, f"{peak} bytes: an entity was expanded"


def test_every_byte_range_split_rejects_the_same_rows(tmp_path):
    dump = str(tmp_path / "site.example")
    hostile_rows = billion_laughs_dump(dump, "/etc/passwd")
    for range_bytes in (64, 257, 1000):
        assert {row_of(r) for r in read_dump(dump, range_bytes) if isinstance(r, Rejected)} == hostile_rows


@pytest.mark.slow
def test_a_7z_row_bomb_is_rejected_as_too_large_and_the_rest_is_read(tmp_path):
    row = b'<row Id="1" PostTypeId="1" Score="1" CreationDate="2020" Title="t" Body="' + b"a" * (32 << 20) + b'" />\n'
    posts = b'<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + row
    posts += b'<row Id="2" PostTypeId="1" Score="1" Title="t" Body="b" />\n</posts>\n'
    archive = str(tmp_path / "site.example.7z")
    with py7zr.SevenZipFile(archive, "w") as z:
        z.writestr(posts, "Posts.xml")
        z.writestr(b"<comments>\n</comments>\n", "Comments.xml")
    del posts, row
    assert os.path.getsize(archive) < 100_000  # 32 MB from a small file
    records, peak = peak_python_memory(lambda: read_dump(archive))
    assert [(type(r).__name__, getattr(r, "reason", "")) for r in records] == [("Rejected", "too-large"), ("StackPost", "")]
    # py7zr decompresses in chunks of at most 128 MB whatever the member's size: memory stays
    # bounded by that, never by the row or the file (here the chunk is the whole 32 MB member).
    assert peak < 4 * (32 << 20)
