"""Deterministic Beam writers for a dataset version.

Beam's own sharded writers assign records to shards at random and in bundle order,
so two runs over the same input give different files. Here a record's shard is a
hash of its id, each shard is sorted by id before it is written, and every shard
file exists even when empty: the same records always give the same bytes.

The sort is external (infra/spill.py): bundles spill sorted runs, and only their
paths cross the shuffle, so contents travel once and no worker holds a shard.

Each writer outputs one small dict per file written (path relative to the version,
sha256, md5, rows, bytes); the run gathers them into the manifest. The md5 is what
Cloud Storage records of each object it stores, so `verify --quick` compares the two
from the store's listing without reading a byte of content.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
import posixpath
from typing import Any, Callable, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import AsList
from apache_beam.transforms.window import GlobalWindows

from infra.runtime import configure_worker, release_freed_memory
from infra.spill import SCRATCH_DIR, merge_runs, scratch_path, write_sorted_run

PARQUET_COMPRESSION = "zstd"
BATCH_BYTES = 1 << 20  # rows turned into Arrow at a time while a row group fills
# Values the Parquet writer encodes before it checks its page size (Arrow's default is 1,024:
# pages of about 13 MB of code text). 64 keeps a code page near the 1 MB page size, which is
# what a streaming reader holds and what the writer buffers (pages of small rows are 1 MB either way).
WRITE_BATCH_ROWS = 64
ROW_GROUP_BYTES = 32 << 20  # text per Parquet row group: what a streaming reader holds of a column
RUN_BYTES = 8 << 20  # what a writer holds per bundle before it sorts it and spills it as a run (more runs only add merge passes)


def shard_of(record_id: str, num_shards: int) -> int:
    """Stable shard index of a record id (independent of Python's hash seed)."""
    return int(hashlib.sha256(record_id.encode()).hexdigest()[:8], 16) % num_shards


def shard_name(prefix: str, index: int, num_shards: int, suffix: str) -> str:
    return f"{prefix}-{index:05d}-of-{num_shards:05d}{suffix}"


class HashingFile:
    """A write-only file wrapper that hashes (sha256, md5) and counts the bytes written through it."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.size = 0
        self.closed = False

    def write(self, data) -> int:
        data = bytes(data)
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        if not self.closed:
            self.raw.close()
            self.closed = True

    def writable(self) -> bool:
        return True

    def info(self, version_dir: str, path: str, rows: int | None = None) -> dict:
        """The manifest entry of the file written (call after close)."""
        return file_info(version_dir, path, self.sha256.hexdigest(), self.size, rows, self.md5.hexdigest())


def file_info(version_dir: str, path: str, sha256: str, size: int, rows: int | None = None, md5: str | None = None) -> dict:
    info = {"path": posixpath.relpath(path, version_dir), "sha256": sha256, "bytes": size}
    if md5 is not None:
        info["md5"] = md5
    if rows is not None:
        info["rows"] = rows
    return info


def write_parquet(path: str, schema: pa.Schema, rows: Iterable[dict]) -> tuple[str, int]:
    """Write rows to one Parquet file in row groups of about ROW_GROUP_BYTES; return (sha256, bytes).

    Readers (the tokenizer sample, the report, Beam's ReadFromParquet) hold one row group
    of a column at a time, so bounded groups keep their memory flat however big a shard is;
    `rows` may be a stream, of which the writer holds one row group.
    """
    out = write_parquet_hashed(path, schema, rows)
    return out.sha256.hexdigest(), out.size


def write_parquet_hashed(path: str, schema: pa.Schema, rows: Iterable[dict], summary=None) -> HashingFile:
    """`write_parquet`, returning the closed HashingFile (its digests and size); `summary.add` (if
    given) sees each row group as it is written."""
    out = HashingFile(FileSystems.create(path))
    with pq.ParquetWriter(out, schema, compression=PARQUET_COMPRESSION, write_batch_size=WRITE_BATCH_ROWS) as writer:
        for group in row_group_tables(rows, schema, ROW_GROUP_BYTES):
            writer.write_table(group)
            if summary is not None:
                summary.add(group)
            del group
            release_freed_memory()
    out.close()
    return out


def row_bytes(row: dict) -> int:
    """About the size of a row: its text and binary values."""
    return sum(len(v) for v in row.values() if isinstance(v, (str, bytes)))


def row_group_tables(rows: Iterable[dict], schema: pa.Schema, max_bytes: int) -> Iterator[pa.Table]:
    """Consecutive runs of rows whose text and binary values add up to about `max_bytes` (at least
    one row each), as Tables: a Parquet row group each.

    A group is held as Arrow (UTF-8), not as Python strings (up to 4 bytes a character): rows
    become a RecordBatch about every BATCH_BYTES, cut only after a multiple of WRITE_BATCH_ROWS
    rows, since the writer encodes that many values at a time and also stops at every chunk
    edge: so cut, a file's bytes are those of the group written as one chunk.
    """
    batches: list[pa.RecordBatch] = []
    pending: list[dict] = []
    group_size = pending_size = 0

    def group() -> pa.Table:
        if pending or not batches:  # an empty file still gets one (empty) row group
            batches.append(pa.RecordBatch.from_pylist(pending, schema=schema))
        return pa.Table.from_batches(batches, schema=schema)

    for row in rows:
        size_of_row = row_bytes(row)
        if (pending or batches) and group_size + size_of_row > max_bytes:
            yield group()
            batches, pending, group_size, pending_size = [], [], 0, 0
        pending.append(row)
        group_size += size_of_row
        pending_size += size_of_row
        if pending_size >= BATCH_BYTES and len(pending) % WRITE_BATCH_ROWS == 0:
            batches.append(pa.RecordBatch.from_pylist(pending, schema=schema))
            pending, pending_size = [], 0
    yield group()


class WriteRunsFn(beam.DoFn):
    """Items → sorted runs on storage, one per shard each time RUN_BYTES are held; yields (shard, run path).

    The first half of an external sort: what crosses the shuffle after it is a path per
    run, not the items. `placements(item)` gives the (shard, sort key, item as stored) it
    is sorted as: one for most items, several where an element carries several (a file's
    LSH bands), so the runner dispatches one element, not one per placement.
    """

    def __init__(self, scratch_dir: str, placements: Callable, size: Callable[[Any], int]):
        self.scratch_dir = scratch_dir
        self.placements = placements
        self.size = size  # about the bytes a stored item takes

    def setup(self):
        configure_worker()

    def start_bundle(self):
        self.held: list[tuple] = []
        self.held_bytes = 0

    def process(self, item):
        for placed in self.placements(item):
            self.held.append(placed)
            self.held_bytes += self.size(placed[2])
        if self.held_bytes >= RUN_BYTES:
            yield from self._spill()

    def finish_bundle(self):
        for out in self._spill():
            yield GlobalWindows.windowed_value(out)

    def _spill(self):
        self.held.sort(key=lambda t: (t[0], t[1]))
        for shard, items in itertools.groupby(self.held, key=operator.itemgetter(0)):
            path = scratch_path(self.scratch_dir, "run")
            write_sorted_run(path, ((key, stored) for _, key, stored in items))
            yield shard, path
        self.held, self.held_bytes = [], 0
        release_freed_memory()


def merged_runs(paths: Iterable[str]) -> Iterator[tuple]:
    """A shard's runs from SortIntoShards merged: (sort key, stored item) in sort-key order."""
    return merge_runs(paths, key=operator.itemgetter(0))


def merged_groups(paths: Iterable[str], group_of: Callable[[Any], Any]) -> Iterator[tuple[Any, Iterator[tuple]]]:
    """A shard's merged runs in groups of consecutive items: (group_of(sort key), its (sort key, stored item)s)."""
    return itertools.groupby(merged_runs(paths), key=lambda item: group_of(item[0]))


class SortIntoShards(beam.PTransform):
    """Items → (shard, [paths of its sorted runs]); every shard in `shards` comes out, with no runs if it got no items.

    The input is one PCollection or a tuple of them: each gets its own run writer, so
    no items are gathered by a Flatten before they are spilled. Merge a shard's runs
    with `merged_runs(paths)` (or `merged_groups`): (sort key, stored item) in sort-key order.
    """

    def __init__(self, scratch_dir: str, placements: Callable, size: Callable[[Any], int], shards=()):
        super().__init__()
        self.scratch_dir = scratch_dir
        self.placements = placements
        self.size = size
        self.shards = list(shards)

    def expand(self, items):
        inputs = [items] if isinstance(items, beam.PCollection) else list(items)
        write_runs = WriteRunsFn(self.scratch_dir, self.placements, self.size)
        # The output type is declared, so Beam need not infer it from process' bytecode (a tenth of a small run's CPU).
        spilled = [
            pcoll | f"WriteRuns{i}" >> beam.ParDo(write_runs).with_output_types(tuple[Any, str]) for i, pcoll in enumerate(inputs)
        ]
        if self.shards:  # one empty marker per shard, so a shard with no items is still written
            markers = beam.Create([(shard, None) for shard in self.shards], reshuffle=False)  # the grouping spreads them
            spilled.append(inputs[0].pipeline | "ShardMarkers" >> markers)
        return (
            tuple(spilled)
            | "WithMarkers" >> beam.Flatten()
            | "GroupRunsByShard" >> beam.GroupByKey()
            | "RunPaths" >> beam.MapTuple(lambda shard, paths: (shard, sorted(p for p in paths if p is not None)))
        )


class DuplicateIdError(RuntimeError):
    """Two rows of a folder whose ids must be unique share one: the run stops before its commit."""


class MergeParquetShardFn(beam.DoFn):
    """(shard, run paths) → the runs merged by sort key into one Parquet file; yields its file entry.

    With `unique_ids`, two rows of one id (sorted next to each other, as a shard holds every
    row of its ids) stop the run. With `summary` (a class: `add(row group)`, `to_json()`), the
    entry's "summary" is what it counted of the shard.
    """

    def __init__(self, version_dir: str, subdir: str, schema: pa.Schema, num_shards: int, unique_ids: bool = False, summary=None):
        self.version_dir = version_dir
        self.subdir = subdir
        self.schema = schema
        self.num_shards = num_shards
        self.unique_ids = unique_ids
        self.summary = summary

    def setup(self):
        configure_worker()

    def process(self, shard_runs):
        index, paths = shard_runs
        rows = 0

        def merged_rows():
            nonlocal rows
            last = None
            for _, row in merged_runs(paths):
                if self.unique_ids:
                    if row["id"] == last:
                        raise DuplicateIdError(
                            f"{self.subdir}/: two rows share the id {last!r} (the second: "
                            f"{row.get('repo')!r} {row.get('path')!r}); nothing was committed"
                        )
                    last = row["id"]
                rows += 1
                yield row

        path = posixpath.join(self.version_dir, self.subdir, shard_name("part", index, self.num_shards, ".parquet"))
        summary = self.summary() if self.summary else None
        entry = write_parquet_hashed(path, self.schema, merged_rows(), summary).info(self.version_dir, path, rows)
        yield entry if summary is None else dict(entry, summary=summary.to_json())


def _row_id(row: dict) -> tuple:
    return (row.get("id") or "", row.get("stage") or "", row.get("path") or "", row.get("repo") or "")


class WriteParquetShards(beam.PTransform):
    """Records with `.to_row()` → `num_shards` sorted Parquet files under `version_dir/subdir`.

    A record's shard is a hash of `key(record)`; rows are sorted within a shard by id
    (then stage, path, repo). The sort is external: each bundle writes sorted runs to
    `scratch_dir`, and one worker per shard merges its runs, holding a frame of each run
    and one row group, never the shard. The input may be a tuple of PCollections.
    """

    def __init__(
        self,
        version_dir: str,
        subdir: str,
        schema: pa.Schema,
        num_shards: int,
        key=lambda r: r.id,
        scratch_dir=None,
        unique_ids: bool = False,
        summary=None,
    ):
        super().__init__()
        self.unique_ids = unique_ids
        self.summary = summary
        self.version_dir = version_dir
        self.subdir = subdir
        self.schema = schema
        self.num_shards = num_shards
        self.key = key
        self.scratch_dir = scratch_dir or posixpath.join(version_dir, SCRATCH_DIR)

    def expand(self, records):
        n, key = self.num_shards, self.key

        def placements(record):
            row = record.to_row()
            return ((shard_of(key(record), n), _row_id(row), row),)

        return (
            records
            | "SortIntoShards" >> SortIntoShards(self.scratch_dir, placements, row_bytes, range(n))
            | "WriteShards"
            >> beam.ParDo(MergeParquetShardFn(self.version_dir, self.subdir, self.schema, n, self.unique_ids, self.summary))
        )


def write_json(path: str, value: Any) -> None:
    """Write a small JSON document deterministically (sorted keys, trailing newline)."""
    data = (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    with FileSystems.create(path) as f:
        f.write(data)


def read_json(path: str) -> Any:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


class WriteSmallJson(beam.PTransform):
    """A small PCollection (counts, file lists) gathered into one JSON list file.

    Only for collections whose size is independent of the corpus size: one entry
    per (stage, reason) or per output file, never per record.
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def expand(self, items):
        path = self.path
        write = beam.Map(lambda _, xs: write_json(path, sorted(xs, key=lambda x: json.dumps(x, sort_keys=True))), AsList(items))
        # One impulse reading the items as a list: a file even when there are none, in two steps where a global
        # combine with its default takes eight. Declared, or Beam infers it through write_json's bytecode.
        return items.pipeline | "Once" >> beam.Impulse() | "WriteJson" >> write.with_output_types(Any)
