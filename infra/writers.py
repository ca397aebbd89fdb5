"""Deterministic Beam writers for a dataset version.

Beam's own sharded writers assign records to shards at random and in bundle order,
so two runs over the same input give different files. Here a record's shard is a
hash of its id, each shard is sorted by id before it is written, and every shard
file exists even when empty: the same records always give the same bytes.

Each writer outputs one small dict per file written (path relative to the version,
sha256, rows, bytes); the run gathers them into the manifest.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

PARQUET_COMPRESSION = "zstd"
ROW_GROUP_BYTES = 32 << 20  # text per Parquet row group: what a streaming reader holds of a column


def shard_of(record_id: str, num_shards: int) -> int:
    """Stable shard index of a record id (independent of Python's hash seed)."""
    return int(hashlib.sha256(record_id.encode()).hexdigest()[:8], 16) % num_shards


def shard_name(prefix: str, index: int, num_shards: int, suffix: str) -> str:
    return f"{prefix}-{index:05d}-of-{num_shards:05d}{suffix}"


class HashingFile:
    """A write-only file wrapper that hashes and counts the bytes written through it."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data) -> int:
        data = bytes(data)
        self.sha256.update(data)
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


def file_info(version_dir: str, path: str, sha256: str, size: int, rows: int | None = None) -> dict:
    info = {"path": posixpath.relpath(path, version_dir), "sha256": sha256, "bytes": size}
    if rows is not None:
        info["rows"] = rows
    return info


def write_parquet(path: str, schema: pa.Schema, rows: list[dict]) -> tuple[str, int]:
    """Write rows to one Parquet file in row groups of about ROW_GROUP_BYTES; return (sha256, bytes).

    Readers (the tokenizer sample, the report, Beam's ReadFromParquet) hold one row group
    of a column at a time, so bounded groups keep their memory flat however big a shard is.
    """
    out = HashingFile(FileSystems.create(path))
    with pq.ParquetWriter(out, schema, compression=PARQUET_COMPRESSION) as writer:
        for group in row_groups(rows, ROW_GROUP_BYTES):
            writer.write_table(pa.Table.from_pylist(group, schema=schema))
    out.close()
    return out.sha256.hexdigest(), out.size


def row_groups(rows: list[dict], max_bytes: int) -> Iterator[list[dict]]:
    """Consecutive runs of rows whose text and binary values add up to about `max_bytes` (at least one row each)."""
    group: list[dict] = []
    size = 0
    for row in rows:
        row_size = sum(len(v) for v in row.values() if isinstance(v, (str, bytes)))
        if group and size + row_size > max_bytes:
            yield group
            group, size = [], 0
        group.append(row)
        size += row_size
    yield group  # an empty file still gets one (empty) row group


class WriteShardFn(beam.DoFn):
    def __init__(self, version_dir: str, subdir: str, schema: pa.Schema, num_shards: int, sort_key):
        self.version_dir = version_dir
        self.subdir = subdir
        self.schema = schema
        self.num_shards = num_shards
        self.sort_key = sort_key

    def process(self, shard_rows):
        index, rows = shard_rows
        rows = sorted((r for r in rows if r is not None), key=self.sort_key)
        path = posixpath.join(self.version_dir, self.subdir, shard_name("part", index, self.num_shards, ".parquet"))
        sha, size = write_parquet(path, self.schema, rows)
        yield file_info(self.version_dir, path, sha, size, len(rows))


def _row_id(row: dict) -> tuple:
    return (row.get("id") or "", row.get("stage") or "", row.get("path") or "", row.get("repo") or "")


class WriteParquetShards(beam.PTransform):
    """Records with `.to_row()` → `num_shards` sorted Parquet files under `version_dir/subdir`."""

    def __init__(self, version_dir: str, subdir: str, schema: pa.Schema, num_shards: int, key=lambda r: r.id):
        super().__init__()
        self.version_dir = version_dir
        self.subdir = subdir
        self.schema = schema
        self.num_shards = num_shards
        self.key = key

    def expand(self, records):
        n = self.num_shards
        key = self.key
        keyed = records | "KeyByShard" >> beam.Map(lambda r: (shard_of(key(r), n), r.to_row()))
        # One empty marker per shard, so a shard with no records is still written.
        markers = records.pipeline | "ShardMarkers" >> beam.Create([(i, None) for i in range(n)])
        return (
            (keyed, markers)
            | "WithMarkers" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(WriteShardFn(self.version_dir, self.subdir, self.schema, n, _row_id))
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
        return (
            items
            | "Gather" >> beam.combiners.ToList()
            | "WriteJson" >> beam.Map(lambda xs: write_json(path, sorted(xs, key=lambda x: json.dumps(x, sort_keys=True))))
        )
