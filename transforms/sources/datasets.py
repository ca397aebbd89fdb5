"""Published code datasets as a source: The Stack, or any Parquet or JSON Lines files of code files.

The files are listed in the launcher (globs on local disk or gs://, or a Hugging Face
Hub dataset's files, `datasets_hub.py`), and the first file of each dataset is checked
for every column its mapping names, so a wrong column fails before any work. In the
graph each file is split into work units that workers read in parallel, each through
`infra.storage`, so memory is bounded by a unit, never by a file:

    Create(files) ─ SplitFiles ─ SpreadUnits ─ ReadUnits ─┬─ RepoFile (kept)
     (launcher)    (Parquet row groups;                   ├─ Rejected, tallies
                    JSON Lines byte ranges;               │
                    a .gz/.zst file whole)                 kept ─ CountFilesPerRepo ─ RepoSnapshot ─ SnapshotId

A JSON Lines byte range reads the lines whose first byte lies in it (`line_pieces`).
Rows become RepoFiles of source `dataset` (`datasets_rows.row_record`), or rejections
of stage `read` by reason; a unit that cannot be read on (a damaged file) ends with one
`unreadable-file` rejection, the rows before it kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import zlib
from typing import Callable, Iterator

import apache_beam as beam
import pyarrow as pa
import zstandard

from infra import storage
from schemas.config import GLOB_CHARACTERS
from schemas.datasets_config import DatasetSource
from schemas.errors import ConfigError
from schemas.records import Rejected, record_id
from transforms.base import ApplyStage, RecordFn
from transforms.sources.common import CountFilesPerRepo, SourceOutputs, with_snapshot_id
from transforms.sources.datasets_hub import hub_pattern, in_split, use_hub_tokens
from transforms.sources.datasets_rows import SOURCE, BadRow, RowMapping, line_pieces, row_record
from transforms.sources.local import STAGE

READ_BLOCK = 1 << 20  # bytes read (or decompressed) at a time from a JSON Lines file
EXTENSIONS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
COMPRESSED = (".gz", ".zst")
# What reading a damaged file raises: I/O, truncated or corrupt compressed streams, bad Parquet.
COLUMN_CHECK_LINES = 100  # a JSON Lines file's columns are those of the first object among these lines
UNREADABLE = (OSError, EOFError, ValueError, zlib.error, zstandard.ZstdError, pa.ArrowException)


@dataclasses.dataclass(frozen=True)
class DatasetFile:
    dataset: str
    path: str
    size: int
    format: str  # parquet | jsonl
    # The path below its pattern's folder: what rejections and the manifest's digest name, so
    # they are the same wherever the dataset is stored (local, gs://, the Hub).
    name: str = ""

    @property
    def compressed(self) -> bool:
        return self.path.endswith(COMPRESSED)


@dataclasses.dataclass(frozen=True)
class DatasetUnit:
    """One piece of work: a Parquet row group, a JSON Lines byte range, or a compressed file whole."""

    file: DatasetFile
    row_group: int | None = None  # Parquet
    start: int = 0  # JSON Lines: the lines whose first byte lies in [start, end)
    end: int | None = None  # None: to the end of the file


# ---- in the launcher: listing the files and checking the mapping -----------------------------


def format_of(path: str) -> str | None:
    name = path.lower()
    for ext in COMPRESSED:
        name = name[: -len(ext)] if name.endswith(ext) else name
    return next((fmt for ext, fmt in EXTENSIONS.items() if name.endswith(ext)), None)


def list_files(section: DatasetSource, where: str, resolve: Callable[[str], str]) -> list[DatasetFile]:
    """Every file of a dataset, sorted; a pattern that matches nothing fails, naming its key.

    A Hub dataset's pattern takes every file under its data_dir; those of its split with
    a known extension are read (README.md, .gitattributes and the like are not data).
    """
    if section.hub is None:
        patterns = [(f"{where}.paths[{j}]", resolve(p)) for j, p in enumerate(section.paths)]
    else:
        patterns = [(f"{where}.hub", hub_pattern(section.hub))]
        try:
            use_hub_tokens([section.hub])
        except Exception as e:  # missing, no permission, no network
            raise ConfigError(f"{where}.hub.token_secret: cannot read {section.hub.token_secret} ({type(e).__name__}: "
                              f"{str(e)[:200]}); grant roles/secretmanager.secretAccessor on it to you and the workers") from None
    found = {}
    for key, pattern in patterns:
        try:
            matched = storage.match_metadata(pattern)
        except Exception as e:  # Beam raises BeamIOError for a folder it cannot list, ValueError for a scheme
            raise ConfigError(f"{key}: cannot list {pattern!r}: {e}") from None
        if section.hub is not None:
            matched = [m for m in matched if in_split(m.path, section.hub) and (section.format or format_of(m.path))]
        if not matched:
            raise ConfigError(f"{key}: no file matches {pattern!r}")
        for m in matched:
            fmt = section.format or format_of(m.path)
            if fmt is None:
                raise ConfigError(f"{key}: {m.path!r} is not .parquet or .jsonl (.gz, .zst); set {where}.format")
            found[m.path] = DatasetFile(section.name, m.path, m.size_in_bytes, fmt, m.path[len(pattern_root(pattern)) :])
    return [found[p] for p in sorted(found)]


def file_columns(file: DatasetFile, max_row_bytes: int) -> list[str]:
    """The columns of a Parquet file's schema, or of the first JSON object among a JSON Lines file's first lines."""
    if file.format == "parquet":
        with storage.parquet_file(file.path) as f:
            return list(f.schema_arrow.names)
    lines = line_pieces(jsonl_blocks(DatasetUnit(file)), 0, float("inf"), max_row_bytes)
    for _, piece in itertools.islice(lines, COLUMN_CHECK_LINES):
        try:
            row = json.loads(piece) if piece is not None else None
        except ValueError:
            continue  # a broken line is that row's rejection, not the run's end
        if isinstance(row, dict):
            return list(row)
    raise ValueError(f"none of its first {COLUMN_CHECK_LINES} lines is a JSON object")


def check_columns(section: DatasetSource, where: str, file: DatasetFile) -> None:
    """Every mapped column is in the dataset's first file, or the run stops naming the key."""
    try:
        columns = file_columns(file, section.max_row_bytes)
    except UNREADABLE as e:
        raise ConfigError(f"{where}: cannot read the columns of {file.path!r}: {type(e).__name__}: {e}") from None
    for field, column in section.mapping().items():
        if column not in columns:
            preset = f" (preset {section.preset})" if getattr(section.columns, field) is None else ""
            shown = sorted(columns)[:40]
            raise ConfigError(
                f"{where}.columns.{field}: column {column!r}{preset} is not in {file.path!r} (its columns: {shown})"
            )


def row_mapping(section: DatasetSource) -> RowMapping:
    return RowMapping(section.name, tuple(sorted(section.mapping().items())), section.host())


def pattern_root(pattern: str) -> str:
    """The folder a pattern's first glob character is in (the pattern itself without one)."""
    cut = min((pattern.index(c) for c in GLOB_CHARACTERS if c in pattern), default=len(pattern))
    return pattern[: pattern.rfind("/", 0, cut) + 1]


def files_digest(files: list[DatasetFile]) -> str:
    """A digest of the files read (named below their pattern's folder) and their sizes,
    the same wherever the dataset is stored."""
    listing = "\n".join(f"{f.name}\t{f.size}" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(listing.encode("utf-8", "surrogatepass")).hexdigest()


# ---- on the workers: splitting files, reading units -------------------------------------------


def split_file(file: DatasetFile, range_bytes: int) -> list[DatasetUnit]:
    """Parquet: one unit per row group (read from the footer); JSON Lines: byte ranges, or the whole compressed file."""
    if file.format == "parquet":
        try:
            with storage.parquet_file(file.path) as f:
                groups = f.metadata.num_row_groups
        except UNREADABLE:
            return [DatasetUnit(file, row_group=0)]  # reading it says why, as a rejection
        return [DatasetUnit(file, row_group=g) for g in range(groups)]
    if file.compressed or file.size == 0:
        return [DatasetUnit(file)]
    return [DatasetUnit(file, start=s, end=min(s + range_bytes, file.size)) for s in range(0, file.size, range_bytes)]


def jsonl_blocks(unit: DatasetUnit) -> Iterator[bytes]:
    """The unit's file from byte max(start - 1, 0) on (a compressed file decompressed, from 0)."""
    with storage.open_file(unit.file.path, decompress=unit.file.compressed) as f:
        if unit.start:
            f.seek(unit.start - 1)
        while block := f.read(READ_BLOCK):
            yield block


def as_binary(array: pa.Array) -> pa.Array:
    """String columns as bytes (and lists of them), so an invalid value fails its row, not the batch."""
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array.cast(pa.large_binary() if pa.types.is_large_string(kind) else pa.binary())
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_string(kind.value_type):
        return array.cast(pa.list_(pa.binary()) if pa.types.is_list(kind) else pa.large_list(pa.binary()))
    return array


def parquet_rows(unit: DatasetUnit, columns: list[str], batch_rows: int) -> Iterator[tuple[str, dict | BadRow]]:
    """(where, row) of a row group, with the mapped columns the file has (a missing one fails each row)."""
    with storage.parquet_file(unit.file.path) as f:
        present = [c for c in columns if c in f.schema_arrow.names]
    batches = storage.parquet_batches(unit.file.path, present, batch_rows, row_groups=[unit.row_group])
    n = 0
    for batch in batches:
        values = {name: as_binary(batch.column(name)).to_pylist() for name in batch.schema.names}
        for i in range(batch.num_rows):
            yield f"{unit.file.name} row group {unit.row_group} row {n}", {name: v[i] for name, v in values.items()}
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

    stage = STAGE
    each_output_is_an_input = True

    def __init__(self, mappings: dict[str, RowMapping], sections: dict[str, DatasetSource], max_file_bytes: int):
        self.mappings = mappings
        self.limits = {name: (s.max_row_bytes, s.batch_rows) for name, s in sections.items()}
        self.max_file_bytes = max_file_bytes
        self.hubs = [s.hub for s in sections.values()]

    def setup(self) -> None:
        use_hub_tokens(self.hubs)

    def __call__(self, unit: DatasetUnit):
        mapping = self.mappings[unit.file.dataset]
        max_row_bytes, batch_rows = self.limits[unit.file.dataset]
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
                    yield Rejected(rid, STAGE, row.reason, f"{where}: {row}"[:500], SOURCE, mapping.dataset, unit.file.name)
                else:
                    yield row_record(row, mapping, where, self.max_file_bytes)
        except UNREADABLE as e:
            part = f"row group {unit.row_group}" if unit.row_group is not None else f"bytes {unit.start}-{unit.end or 'end'}"
            rid = record_id(SOURCE, mapping.dataset, unit.file.name, part, "unreadable")
            detail = f"{unit.file.name} {part}, after {read} rows: {type(e).__name__}: {e}"
            yield Rejected(rid, STAGE, "unreadable-file", detail[:500], SOURCE, mapping.dataset, unit.file.name)


class ReadDatasets(beam.PTransform):
    """Dataset files → SourceOutputs (kept RepoFiles, Rejected, tallies, snapshots, summary)."""

    def __init__(self, sections: tuple[DatasetSource, ...], files: list[DatasetFile], max_file_bytes: int):
        super().__init__()
        self.sections = {s.name: s for s in sections}
        self.files = files
        self.max_file_bytes = max_file_bytes

    def expand(self, pbegin):
        mappings = {name: row_mapping(s) for name, s in self.sections.items()}
        read = (
            pbegin
            | "ListFiles" >> beam.Create(self.files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "SplitFiles" >> beam.ParDo(SplitFileFn(self.sections))
            | "SpreadUnits" >> beam.Reshuffle()
            | "ReadUnits" >> ApplyStage(ReadDatasetUnitFn(mappings, self.sections, self.max_file_bytes))
        )
        snapshot = read.kept | "CountFilesPerRepo" >> CountFilesPerRepo()
        return SourceOutputs(read.kept, read.rejected, read.tally, snapshot, with_snapshot_id(pbegin, self.summary(), snapshot))

    def summary(self) -> dict:
        """The manifest entry: per dataset, its mapping and a digest of the files it read."""
        entries = []
        for name, section in self.sections.items():
            files = [f for f in self.files if f.dataset == name]
            where = {"hub": dataclasses.asdict(section.hub)} if section.hub else {"paths": list(section.paths)}
            entries.append(
                {
                    "name": name,
                    **where,
                    "preset": section.preset,
                    "columns": section.mapping(),
                    "files": len(files),
                    "bytes": sum(f.size for f in files),
                    "files_sha256": files_digest(files),
                }
            )
        return {"datasets": entries}


def read_datasets(sections: tuple[DatasetSource, ...], resolve: Callable[[str], str], max_file_bytes: int) -> ReadDatasets:
    """The datasets source, its files listed and first files' columns checked now (before any work)."""
    files = []
    for i, section in enumerate(sections):
        where = f"sources.datasets[{i}]"
        listed = list_files(section, where, resolve)
        first = next((f for f in listed if f.size > 0), None)
        if first is not None:  # empty files hold no rows to map
            check_columns(section, where, first)
        files += listed
    return ReadDatasets(sections, files, max_file_bytes)
