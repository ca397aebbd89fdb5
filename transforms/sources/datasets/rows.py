"""Rows of a code dataset → `RepoFile` records, or `Rejected` ones of stage `read` saying why not.

A row is a dict of column values: from JSON Lines as `json` parses them, from Parquet with
every string column read as bytes (so one bad value costs only its row). `RowMapping` says
which column feeds which field. Reasons:

    missing-column  a mapped column absent from the row (JSON Lines rows, Parquet files)
    null-column     content, path, repo or id null
    wrong-type      content or path not a string, stars not an integer, license not a string
                    or a list of strings, ...
    out-of-range    stars negative or at least 2^63 (what no int64 column can hold)
    too-large       content over read.max_file_bytes, or read.max_notebook_bytes for a notebook (UTF-8 bytes)
    binary, not-utf8  content with a NUL byte, or bytes (or a JSON escape) that are not UTF-8
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from schemas import stage_names
from schemas.records import Rejected, RepoFile, record_id
from transforms.sources.file_decoding import decode_file, size_limit

SOURCE = "dataset"
MAX_STARS = 2**63 - 1  # stars are an int64 column of every output


class BadRow(ValueError):
    """A row that is no file: `reason` is the rejection's."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class RowMapping:
    """How one dataset's rows become records: its name, host and {field: column}."""

    dataset: str
    columns: tuple[tuple[str, str], ...]  # (field, column), sorted by field
    origin: str | None = None

    @property
    def fields(self) -> dict[str, str]:
        return dict(self.columns)

    def column_names(self) -> list[str]:
        """The distinct columns to read, in a fixed order."""
        return sorted(set(self.fields.values()))


def text_of(value: Any, column: str) -> str:
    """A string value (bytes from Parquet are decoded); BadRow for anything else."""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRow("not-utf8", f"{column} is not UTF-8 at byte {e.start}") from None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise BadRow("not-utf8", f"{column} holds an unpaired surrogate at {e.start}") from None
        return value
    raise BadRow("wrong-type", f"{column} is {type(value).__name__} {repr(value)[:60]}, not a string")


def stars_of(value: Any, column: str) -> int | None:
    """An integer star count (a whole float, as pandas writes nullable ints, counts too)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_STARS:
            raise BadRow("out-of-range", f"{column} is {str(value)[:40]}, not in 0..2^63-1")
        return value
    raise BadRow("wrong-type", f"{column} is {type(value).__name__} {repr(value)[:60]}, not an integer")


def license_of(value: Any, column: str) -> str | None:
    """An SPDX id or expression; a list of ids (The Stack's) must all be allowed, so they join with AND."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        ids = sorted({text_of(v, column).strip() for v in value} - {""})
        return " AND ".join(f"({i})" if " " in i else i for i in ids) or None
    return text_of(value, column).strip() or None


def content_bytes(value: Any, column: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise BadRow("not-utf8", f"{column} holds an unpaired surrogate at {e.start}") from None
    raise BadRow("wrong-type", f"{column} is {type(value).__name__} {repr(value)[:60]}, not a string")


def present(row: dict, fields: dict[str, str], field: str, required: bool) -> Any:
    """The value of `field`'s column; BadRow when the column is missing, or null where required."""
    column = fields.get(field)
    if column is None:
        return None
    if column not in row:
        raise BadRow("missing-column", f"no column {column!r} ({field})")
    value = row[column]
    if value is None and required:
        raise BadRow("null-column", f"{column} ({field}) is null")
    return value


def row_record(
    row: dict, mapping: RowMapping, where: str, max_file_bytes: int, max_notebook_bytes: int | None = None
) -> RepoFile | Rejected:
    """One row as a RepoFile, or a Rejected naming the column at fault.

    The id hashes the dataset's name with `where`, the row's file and place in it, so
    every row read has its own: identical rows in two files (overlapping shards, a file
    downloaded twice) are two records, and exact dedup keeps one of them.
    """
    fields = mapping.fields
    repo, path, revision = mapping.dataset, "", None
    rid = record_id(SOURCE, mapping.dataset, where)
    try:
        path = text_of(present(row, fields, "path", True), fields["path"])
        if "repo" in fields:
            repo = text_of(present(row, fields, "repo", True), fields["repo"])
        if (value := present(row, fields, "revision", False)) is not None:
            revision = text_of(value, fields["revision"])
        if "id" in fields:
            present(row, fields, "id", True)
    except BadRow as e:
        return Rejected(rid, stage_names.READ, e.reason, f"{where}: {e}"[:500], SOURCE, repo, path)
    try:
        data = content_bytes(present(row, fields, "content", True), fields["content"])
        if len(data) > (limit := size_limit(path, max_file_bytes, max_notebook_bytes)):
            raise BadRow("too-large", f"{len(data)} bytes > {limit}")
        stars = stars_of(present(row, fields, "stars", False), fields.get("stars"))
        license = license_of(present(row, fields, "license", False), fields.get("license"))
    except BadRow as e:
        return Rejected(rid, stage_names.READ, e.reason, f"{where}: {e}"[:500], SOURCE, repo, path)
    text, problem = decode_file(data)
    if problem:
        reason, _, at = problem.partition(":")
        return Rejected(rid, stage_names.READ, reason, f"{where}: content{f' at byte {at}' if at else ''}", SOURCE, repo, path)
    return RepoFile(rid, SOURCE, repo, path, revision, license, stars, len(data), text, origin=mapping.origin)


# ---- JSON Lines: cutting a byte stream into lines -----------------------------------------


def is_row(buf: bytearray, start: int, end: int) -> bool:
    """Whether buf[start:end] holds more than whitespace (copying it only when it starts with some)."""
    return end > start and (buf[start] not in b" \t\r\f\v" or bool(buf[start:end].strip()))


def line_pieces(blocks: Iterator[bytes], start: int, end: float, max_row_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(offset, bytes) of every line whose first byte lies in [start, end), without its newline.

    `blocks` is the file from byte max(start - 1, 0) on: a range that starts mid-file
    skips the line under way (it belongs to the range before), which reads past its own
    end to finish its last line. A line longer than `max_row_bytes` comes as
    (offset, None) and is never held whole. Blank lines are no rows and are skipped.
    """
    if start >= end:
        return
    buf = bytearray()
    base = max(start - 1, 0)  # file offset of buf[0]
    line = 0 if start == 0 else None  # offset in buf where the current line starts; None: skipping to a newline
    oversize: int | None = None  # file offset of a line being skipped as too long
    for block in blocks:
        scan = len(buf)
        buf += block
        while (nl := buf.find(b"\n", scan)) >= 0:
            if oversize is not None:
                yield oversize, None
                oversize = None
            elif line is not None and is_row(buf, line, nl):
                yield base + line, bytes(buf[line:nl]) if nl - line <= max_row_bytes else None
            if base + nl + 1 >= end:
                return
            line, scan = nl + 1, nl + 1
        keep = line if line is not None else len(buf)
        del buf[:keep]
        base += keep
        line = 0 if line is not None else None
        if line is not None and len(buf) > max_row_bytes:
            if oversize is None:
                oversize = base
            base += len(buf)
            buf.clear()
            line = None
    if oversize is not None:
        yield oversize, None
    elif line is not None and is_row(buf, line, len(buf)) and base + line < end:
        yield base + line, bytes(buf[line:]) if len(buf) - line <= max_row_bytes else None
