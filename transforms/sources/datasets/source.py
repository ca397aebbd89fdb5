"""Published code datasets as a source: The Stack, or any Parquet or JSON Lines files of code files.

The files are listed in the launcher (globs on local disk or gs://, or a Hugging Face
Hub dataset's files at one commit, `datasets_hub.py`), and the first file of each dataset
is checked for every column its mapping names, so a wrong column fails before any work.
Each file is named below the folder all the dataset's files share, so two globs holding
files of one name give them different names. In the graph each file is split into work
units that workers read in parallel, each through `infra.storage`, so memory is bounded
by a unit's batch, never by a file:

    Create(files) ─ SplitFiles ─ SpreadUnits ─ ReadUnits ─┬─ RepoFile (kept)
     (launcher)    (Parquet: runs of row groups,          ├─ Rejected, tallies
                    its footer read once here;            │
                    JSON Lines: byte ranges;               kept ─ CountFilesPerRepo ─ RepoSnapshot ─ SnapshotId
                    a .gz/.zst file whole)

Parquet is read a page at a time (pyarrow's buffered stream, in record batches bounded in
bytes), so one 1 GB row group costs what 32 MiB ones do. A JSON Lines byte range reads the
lines whose first byte lies in it (`line_pieces`); a compressed file is read to its
trailer (`datasets_files`). Rows become RepoFiles of source `dataset`, each identified by
its file and place in it (`datasets_rows.row_record`), or rejections of stage `read` by
reason; a unit that cannot be read on (a damaged file, a cut stream) ends with one
`unreadable-file` rejection, the rows before it kept; a path that is no regular file (a
FIFO, a device, a folder named `x.parquet`) is one rejection naming what it is.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import json
import os
import zlib
from typing import Callable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from infra import storage
from schemas import stage_names
from schemas.datasets_config import DatasetSource
from schemas.errors import ConfigError
from schemas.records import Rejected, record_id
from transforms.base import ApplyStage, RecordFn
from transforms.sources.common import CountFilesPerRepo, SourceOutputs, with_snapshot_id
from transforms.sources.datasets.files import (
    READ_BLOCK,
    NotRegularFile,
    decompressed_blocks,
    local_entries,
    local_problem,
    open_raw,
)
from transforms.sources.datasets.hub import list_hub, use_hub_tokens
from transforms.sources.datasets.rows import SOURCE, BadRow, RowMapping, line_pieces, row_record

EXTENSIONS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
COMPRESSED = (".gz", ".zst")
COLUMN_CHECK_LINES = 100  # a JSON Lines file's columns are those of the first object among these lines
# What reading a damaged file raises: I/O, truncated or corrupt compressed streams, bad Parquet.
UNREADABLE = (OSError, EOFError, ValueError, zlib.error, zstandard.ZstdError, pa.ArrowException)
PAGE_BUFFER = 1 << 20  # Parquet column chunks are read through a buffer of this size, a page at a time
BATCH_BYTES = 4 << 20  # Parquet rows decoded at a time: about this many bytes of the mapped columns


@dataclasses.dataclass(frozen=True)
class DatasetFile:
    dataset: str
    path: str
    size: int
    format: str  # parquet | jsonl
    # The path below the folder all the dataset's files share: what ids, rejections and the
    # manifest name, so they are the same wherever the dataset is stored (local, gs://, the Hub).
    name: str = ""
    problem: tuple[str, str] | None = None  # (reason, detail) of a path that is no regular file

    @property
    def compressed(self) -> bool:
        return self.path.endswith(COMPRESSED)


@dataclasses.dataclass(frozen=True)
class DatasetUnit:
    """One piece of work: a run of Parquet row groups, a JSON Lines byte range, or a compressed file whole."""

    file: DatasetFile
    row_groups: tuple[int, int] | None = None  # Parquet: row groups [first, end); None: every one
    first_row: int = 0  # Parquet: the file's row number of the unit's first row
    start: int = 0  # JSON Lines: the lines whose first byte lies in [start, end)
    end: int | None = None  # None: to the end of the file


@dataclasses.dataclass(frozen=True)
class ListedDataset:
    """What the launcher found of one dataset: its files, and for the Hub the commit and config read."""

    files: list[DatasetFile]
    hub: dict = dataclasses.field(default_factory=dict)  # {"commit": ..., "config": ...}


# ---- in the launcher: listing the files and checking the mapping -----------------------------


def format_of(path: str) -> str | None:
    name = path.lower()
    for ext in COMPRESSED:
        name = name[: -len(ext)] if name.endswith(ext) else name
    return next((fmt for ext, fmt in EXTENSIONS.items() if name.endswith(ext)), None)


def matched_paths(pattern: str) -> dict[str, tuple[int, NotRegularFile | None]]:
    """{path: (size, why it is no regular file or None)} of what a pattern matches.

    Locally, entries that Beam's listing passes over or cannot read are found too: FIFOs,
    devices and links to them, dangling links, and folders named like a data file.
    """
    found = {m.path: (m.size_in_bytes, None) for m in storage.match_metadata(pattern)}
    if not storage.is_local(pattern):
        return found
    found = {os.path.abspath(p): v for p, v in found.items()}
    for path in sorted(set(found) | {os.path.abspath(e) for e in local_entries(pattern)}):
        problem = local_problem(path)
        if problem is not None and (problem.reason != "folder" or format_of(path)):
            found[path] = (0, problem)
    return found


def listed_paths(section: DatasetSource, where: str, resolve: Callable[[str], str]) -> tuple[dict, dict]:
    """({path: (size, problem)}, hub facts) of a dataset; a pattern that matches nothing fails, naming its key."""
    if section.hub is not None:
        try:
            use_hub_tokens([section.hub])
        except Exception as e:  # missing, no permission, no network
            raise ConfigError(
                f"{where}.hub.token_secret: cannot read {section.hub.token_secret} ({type(e).__name__}: {str(e)[:200]}); "
                "grant roles/secretmanager.secretAccessor on it to you and the workers"
            ) from None
        listing = list_hub(section.hub, where, lambda path: bool(section.format or format_of(path)))
        files = {listing.root + path: (size, None) for path, size in listing.files}
        return files, {"commit": listing.commit, "config": listing.config}
    found = {}
    for j, path in enumerate(section.paths):
        key, pattern = f"{where}.paths[{j}]", resolve(path)
        try:
            matched = matched_paths(pattern)
        except Exception as e:  # Beam raises BeamIOError for a folder it cannot list, ValueError for a scheme
            raise ConfigError(f"{key}: cannot list {pattern!r}: {e}") from None
        if not matched:
            raise ConfigError(f"{key}: no file matches {pattern!r}")
        found |= matched
    return found, {}


def list_files(section: DatasetSource, where: str, resolve: Callable[[str], str]) -> ListedDataset:
    """Every file of a dataset, sorted, named below the folder they all share."""
    found, hub = listed_paths(section, where, resolve)
    root = common_root(list(found))
    files = []
    for path in sorted(found):
        size, problem = found[path]
        fmt = section.format or format_of(path) or ("parquet" if problem else None)
        if fmt is None:
            raise ConfigError(f"{where}: {path!r} is not .parquet or .jsonl (.gz, .zst); set {where}.format")
        why = (problem.reason, str(problem)) if problem else None
        files.append(DatasetFile(section.name, path, size, fmt, path[len(root) :], why))
    return ListedDataset(files, hub)


def common_root(paths: list[str]) -> str:
    """The folder (ending in `/`) every path is in; "" when they share none."""
    folders = [p[: p.rfind("/") + 1] for p in paths]
    shared = os.path.commonprefix(folders) if folders else ""
    return shared[: shared.rfind("/") + 1]


def file_columns(file: DatasetFile, max_row_bytes: int) -> list[str]:
    """The columns of a Parquet file's schema, or of the first JSON object among a JSON Lines file's first lines."""
    if file.format == "parquet":
        with open_raw(file.path) as raw:
            return list(pq.ParquetFile(raw).schema_arrow.names)
    lines = line_pieces(jsonl_blocks(DatasetUnit(file)), 0, float("inf"), max_row_bytes)
    for _, piece in itertools.islice(lines, COLUMN_CHECK_LINES):
        try:
            row = json.loads(piece) if piece is not None else None
        except (ValueError, RecursionError):
            continue  # a broken line is that row's rejection, not the run's end
        if isinstance(row, dict):
            return list(row)
    raise ValueError(f"none of its first {COLUMN_CHECK_LINES} lines is a JSON object")


def check_columns(section: DatasetSource, where: str, file: DatasetFile) -> None:
    """Every mapped column is in the dataset's first file, once, or the run stops naming the key."""
    try:
        columns = file_columns(file, section.max_row_bytes)
    except UNREADABLE as e:
        raise ConfigError(f"{where}: cannot read the columns of {file.path!r}: {type(e).__name__}: {e}") from None
    for field, column in section.mapping().items():
        preset = f" (preset {section.preset})" if getattr(section.columns, field) is None else ""
        if column not in columns:
            shown = sorted(columns)[:40]
            raise ConfigError(
                f"{where}.columns.{field}: column {column!r}{preset} is not in {file.path!r} (its columns: {shown})"
            )
        if columns.count(column) > 1:
            raise ConfigError(
                f"{where}.columns.{field}: column {column!r}{preset} is in {file.path!r} "
                f"{columns.count(column)} times; rewrite the file with distinct column names"
            )


def row_mapping(section: DatasetSource) -> RowMapping:
    return RowMapping(section.name, tuple(sorted(section.mapping().items())), section.host())


def files_digest(files: list[DatasetFile]) -> str:
    """A digest of the files read (named below their shared folder) and their sizes,
    the same wherever the dataset is stored."""
    listing = "\n".join(f"{f.name}\t{f.size}" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(listing.encode("utf-8", "surrogatepass")).hexdigest()


# ---- on the workers: splitting files, reading units -------------------------------------------


def split_file(file: DatasetFile, range_bytes: int) -> list[DatasetUnit]:
    """Parquet: the whole file up to `range_bytes` (its footer is then read once, by the unit), or runs of
    row groups of about `range_bytes` (from the footer, read here); JSON Lines: byte ranges, or the
    whole compressed file."""
    if file.problem is not None:
        return [DatasetUnit(file)]  # reading it says what it is, as a rejection
    if file.format == "parquet" and file.size <= range_bytes:
        return [DatasetUnit(file)]
    if file.format == "parquet":
        try:
            with open_raw(file.path) as raw:
                metadata = pq.ParquetFile(raw).metadata
        except UNREADABLE:
            return [DatasetUnit(file, row_groups=(0, 1))]  # reading it says why, as a rejection
        return row_group_units(file, metadata, range_bytes)
    if file.compressed or file.size == 0:
        return [DatasetUnit(file)]
    return [DatasetUnit(file, start=s, end=min(s + range_bytes, file.size)) for s in range(0, file.size, range_bytes)]


def row_group_units(file: DatasetFile, metadata: pq.FileMetaData, range_bytes: int) -> list[DatasetUnit]:
    """Consecutive row groups joined into units of about `range_bytes` (a larger group is a unit alone),
    so that 2,000 small groups cost a few units, not 2,000 footer reads."""
    units, first, first_row, rows, size = [], 0, 0, 0, 0
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        if g > first and size + group.total_byte_size > range_bytes:
            units.append(DatasetUnit(file, row_groups=(first, g), first_row=first_row))
            first, first_row, size = g, rows, 0
        rows += group.num_rows
        size += group.total_byte_size
    units.append(DatasetUnit(file, row_groups=(first, metadata.num_row_groups), first_row=first_row))
    return units


def jsonl_blocks(unit: DatasetUnit) -> Iterator[bytes]:
    """The unit's file from byte max(start - 1, 0) on (a compressed file decompressed, from 0, to its trailer)."""
    with open_raw(unit.file.path) as raw:
        if unit.file.compressed:
            yield from decompressed_blocks(raw, unit.file.path)
            return
        if unit.start:
            raw.seek(unit.start - 1)
        while block := raw.read(READ_BLOCK):
            yield block


def as_binary(array: pa.Array) -> pa.Array:
    """String columns as bytes (and lists of them), so an invalid value fails its row, not the batch."""
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array.cast(pa.large_binary() if pa.types.is_large_string(kind) else pa.binary())
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_string(kind.value_type):
        return array.cast(pa.list_(pa.binary()) if pa.types.is_list(kind) else pa.large_list(pa.binary()))
    return array


def batch_rows_of(metadata: pq.FileMetaData, groups: list[int], columns: list[str], most: int) -> int:
    """Rows per record batch, so that a batch holds about BATCH_BYTES of the columns read (at most `most`)."""
    schema = metadata.schema
    read = [i for i in range(len(schema)) if schema.column(i).path.split(".")[0] in columns]
    size = sum(metadata.row_group(g).column(i).total_uncompressed_size for g in groups for i in read)
    rows = sum(metadata.row_group(g).num_rows for g in groups)
    return max(1, min(most, BATCH_BYTES * rows // max(size, 1)))


def parquet_rows(unit: DatasetUnit, columns: list[str], batch_rows: int) -> Iterator[tuple[str, dict | BadRow]]:
    """(where, row) of a unit's row groups, read a page at a time, with the mapped columns the file has."""
    with open_raw(unit.file.path) as raw:
        f = pq.ParquetFile(raw, buffer_size=PAGE_BUFFER, pre_buffer=False)
        names = f.schema_arrow.names
        doubled = [c for c in columns if names.count(c) > 1]
        if doubled:
            raise ValueError(f"column {doubled[0]!r} appears {names.count(doubled[0])} times in the file")
        present = [c for c in columns if c in names]
        groups = list(range(*(unit.row_groups or (0, f.metadata.num_row_groups))))
        ends = list(itertools.accumulate(f.metadata.row_group(g).num_rows for g in groups))  # the unit's row after each group
        size = batch_rows_of(f.metadata, groups, present, batch_rows)
        n = 0  # the unit's row
        for batch in f.iter_batches(batch_size=size, row_groups=groups, columns=present, use_threads=False):
            values = {name: as_binary(batch.column(name)).to_pylist() for name in batch.schema.names}
            for i in range(batch.num_rows):
                group = groups[bisect.bisect_right(ends, n)]
                yield f"{unit.file.name} row {unit.first_row + n} (row group {group})", {k: v[i] for k, v in values.items()}
                n += 1


def jsonl_rows(unit: DatasetUnit, max_row_bytes: int) -> Iterator[tuple[str, dict | BadRow]]:
    """(where, row) of every line of a byte range; a line that is no JSON object comes as a BadRow."""
    end = float("inf") if unit.end is None else unit.end
    for offset, piece in line_pieces(jsonl_blocks(unit), unit.start, end, max_row_bytes):
        where = f"{unit.file.name} line at byte {offset}"
        if piece is None:
            yield where, BadRow("too-large", f"the line is over {max_row_bytes} bytes (max_row_bytes)")
            continue
        try:
            row = json.loads(piece)
        except ValueError as e:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not UTF-8
            yield where, BadRow("broken-json", f"{type(e).__name__}: {e}")
            continue
        except RecursionError:
            yield where, BadRow("broken-json", "nested deeper than the JSON parser goes")
            continue
        yield where, row if isinstance(row, dict) else BadRow("broken-json", f"a {type(row).__name__}, not an object")


class SplitFileFn(beam.DoFn):
    """A dataset file → its work units (`split_file`), with the Hub tokens this worker reads them with."""

    def __init__(self, sections: dict[str, DatasetSource]):
        self.sections = sections

    def setup(self):
        use_hub_tokens(s.hub for s in self.sections.values())

    def process(self, file: DatasetFile):
        yield from split_file(file, self.sections[file.dataset].range_bytes)


class ReadDatasetUnitFn(RecordFn):
    """One work unit → a RepoFile or Rejected per row (read = kept + rejected)."""

    stage = stage_names.READ
    each_output_is_an_input = True

    def __init__(
        self,
        mappings: dict[str, RowMapping],
        sections: dict[str, DatasetSource],
        max_file_bytes: int,
        max_notebook_bytes: int | None = None,
    ):
        self.mappings = mappings
        self.limits = {name: (s.max_row_bytes, s.batch_rows) for name, s in sections.items()}
        self.sizes = (max_file_bytes, max_notebook_bytes)
        self.hubs = [s.hub for s in sections.values()]

    def setup(self) -> None:
        use_hub_tokens(self.hubs)

    def __call__(self, unit: DatasetUnit):
        mapping = self.mappings[unit.file.dataset]
        max_row_bytes, batch_rows = self.limits[unit.file.dataset]
        if unit.file.problem is not None:
            yield self.not_regular(unit, mapping, *unit.file.problem)
            return
        if unit.file.format == "parquet":
            rows = parquet_rows(unit, mapping.column_names(), batch_rows)
        else:
            rows = jsonl_rows(unit, max_row_bytes)
        read = 0
        try:
            for where, row in rows:
                read += 1
                if isinstance(row, BadRow):
                    rid = record_id(SOURCE, mapping.dataset, where)
                    yield Rejected(
                        rid, stage_names.READ, row.reason, f"{where}: {row}"[:500], SOURCE, mapping.dataset, unit.file.name
                    )
                else:
                    yield row_record(row, mapping, where, *self.sizes)
        except NotRegularFile as e:  # replaced by a FIFO, a device or a folder after it was listed
            yield self.not_regular(unit, mapping, e.reason, str(e))
        except UNREADABLE as e:
            part = self.part(unit)
            rid = record_id(SOURCE, mapping.dataset, unit.file.name, part, "unreadable")
            detail = f"{unit.file.name} {part}, after {read} rows: {type(e).__name__}: {e}"
            yield Rejected(rid, stage_names.READ, "unreadable-file", detail[:500], SOURCE, mapping.dataset, unit.file.name)

    @staticmethod
    def part(unit: DatasetUnit) -> str:
        """The part of the file a unit reads, as rejections name it."""
        if unit.file.format != "parquet":
            return f"bytes {unit.start}-{unit.end or 'end'}"
        return f"row groups {unit.row_groups[0]}-{unit.row_groups[1] - 1}" if unit.row_groups else "the whole file"

    @staticmethod
    def not_regular(unit: DatasetUnit, mapping: RowMapping, reason: str, detail: str) -> Rejected:
        rid = record_id(SOURCE, mapping.dataset, unit.file.name, "not a regular file")
        return Rejected(
            rid, stage_names.READ, reason, f"{unit.file.name}: {detail}"[:500], SOURCE, mapping.dataset, unit.file.name
        )


class ReadDatasets(beam.PTransform):
    """Dataset files → SourceOutputs (kept RepoFiles, Rejected, tallies, snapshots, summary)."""

    def __init__(
        self,
        sections: tuple[DatasetSource, ...],
        listed: dict[str, ListedDataset],
        max_file_bytes: int,
        max_notebook_bytes: int | None = None,
    ):
        super().__init__()
        self.sections = {s.name: s for s in sections}
        self.listed = listed
        self.files = [f for name in self.sections for f in listed[name].files]
        self.sizes = (max_file_bytes, max_notebook_bytes)

    def expand(self, pbegin):
        mappings = {name: row_mapping(s) for name, s in self.sections.items()}
        read = (
            pbegin
            | "ListFiles" >> beam.Create(self.files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "SplitFiles" >> beam.ParDo(SplitFileFn(self.sections))
            | "SpreadUnits" >> beam.Reshuffle()
            | "ReadUnits" >> ApplyStage(ReadDatasetUnitFn(mappings, self.sections, *self.sizes))
        )
        snapshot = read.kept | "CountFilesPerRepo" >> CountFilesPerRepo()
        return SourceOutputs(read.kept, read.rejected, read.tally, snapshot, with_snapshot_id(pbegin, self.summary(), snapshot))

    def summary(self) -> dict:
        """The manifest entry: per dataset, its mapping, the commit read (Hub) and every file read with its size."""
        entries = []
        for name, section in self.sections.items():
            files = self.listed[name].files
            where = (
                {"hub": {**dataclasses.asdict(section.hub), **self.listed[name].hub}}
                if section.hub
                else {"paths": list(section.paths)}
            )
            entries.append(
                {
                    "name": name,
                    **where,
                    "preset": section.preset,
                    "columns": section.mapping(),
                    "files": len(files),
                    "bytes": sum(f.size for f in files),
                    "files_sha256": files_digest(files),
                    "file_list": [{"name": f.name, "size": f.size} for f in files],
                }
            )
        return {"datasets": entries}


def read_datasets(
    sections: tuple[DatasetSource, ...], resolve: Callable[[str], str], max_file_bytes: int, max_notebook_bytes: int | None = None
) -> ReadDatasets:
    """The datasets source, its files listed and first files' columns checked now (before any work)."""
    listed = {}
    for i, section in enumerate(sections):
        where = f"sources.datasets[{i}]"
        listed[section.name] = list_files(section, where, resolve)
        first = next((f for f in listed[section.name].files if f.size > 0 and f.problem is None), None)
        if first is not None:  # empty files hold no rows to map
            check_columns(section, where, first)
    return ReadDatasets(sections, listed, max_file_bytes, max_notebook_bytes)
