"""Parquet shards are written in bounded row groups, so readers can stream them."""

from __future__ import annotations

import dataclasses
import hashlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from infra import storage, writers
from infra.spill import SCRATCH_DIR
from schemas import arrow
from schemas.records import Document, Rejected, RepoFile, RepoSnapshot, flat_row
from tests.conftest import local_pipeline
from transforms.sources.crawl.hosts import ListingFailure, RemoteRepo


def rejected_rows(n: int, detail_bytes: int) -> list[dict]:
    return [
        Rejected(f"id{i:04d}", "filters", "long-line", "x" * detail_bytes, "local", "o/r", f"f{i}.py").to_row() for i in range(n)
    ]


def test_a_records_row_is_what_dataclasses_asdict_gives_without_its_deep_copy():
    records = [
        RepoFile("id", "github", "o/r", "a.py", "c0ffee", "MIT", 3, 2, "x\n", "Python", "github", 4, "python"),
        Rejected("id", "filters", "long-line", "detail", "local", "o/r", "a.py"),
        RepoSnapshot("local", "o/r", "tree:ab", "MIT", None, 7),
        RemoteRepo("gitlab", "g/r", "42", "main", 5, "Apache-2.0", "2024-01-01T00:00:00Z"),
        ListingFailure("github", "search?q=x", "server-error", "502"),
    ]
    for record in records:
        assert flat_row(record) == dataclasses.asdict(record) and flat_row(record) is not vars(record)
    document = Document("id", "code", "text", "local", tags=("a", "b"), meta=(("k", "v"),))
    assert document.to_row() == {**dataclasses.asdict(document), "tags": ["a", "b"], "meta": [["k", "v"]]}


def test_a_repo_file_crosses_a_shuffle_as_its_fields_and_comes_back_equal():
    """What exact dedup shuffles and spills is `fields()`: a plain tuple Beam's coder writes itself."""
    from apache_beam.coders.typecoders import registry

    record = RepoFile("id", "github", "o/r", "a.ipynb", "c0ffee", "MIT", 3, 2, "x\n", "Python", "github", 4, "python")
    fields = record.fields()
    assert type(fields) is tuple and fields == dataclasses.astuple(record)
    coder = registry.get_coder(beam.typehints.Any).get_impl()
    assert RepoFile.of_fields(coder.decode(coder.encode(fields))) == record


def test_row_groups_hold_about_the_byte_budget_and_keep_the_order(tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "ROW_GROUP_BYTES", 10_000)
    rows = rejected_rows(100, 1_000)
    path = str(tmp_path / "part.parquet")
    sha, size = writers.write_parquet(path, arrow.REJECTED, rows)

    meta = pq.ParquetFile(path).metadata
    assert 9 <= meta.num_row_groups <= 12  # about 100 KB of text in 10 KB groups
    assert all(meta.row_group(i).num_rows <= 10 for i in range(meta.num_row_groups))
    read = [r for b in storage.parquet_batches(path, ["id"], 7) for r in b.column("id").to_pylist()]
    assert read == [r["id"] for r in rows]
    data = (tmp_path / "part.parquet").read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha and len(data) == size


def test_a_row_over_the_budget_gets_a_group_of_its_own_and_no_rows_one_empty_group(tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "ROW_GROUP_BYTES", 10_000)
    rows = rejected_rows(3, 100) + rejected_rows(1, 50_000) + rejected_rows(2, 100)
    path = str(tmp_path / "big.parquet")
    writers.write_parquet(path, arrow.REJECTED, rows)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 1, 2]

    empty = str(tmp_path / "empty.parquet")
    writers.write_parquet(empty, arrow.REJECTED, [])
    assert pq.read_table(empty).num_rows == 0 and pq.read_table(empty).schema.equals(arrow.REJECTED)


def installed_code_documents(limit: int) -> list[dict]:
    """Document rows of real code: the standard library's top-level modules, and a non-ASCII
    file (a Python str of 4 bytes a character)."""
    import json
    import pathlib

    files = sorted(pathlib.Path(json.__file__).parent.parent.glob("*.py"))[:limit]
    texts = [p.read_text(errors="replace") for p in files] + ["def smile():\n    return '\U0001f600'\n" * 200]
    return [
        Document(f"id{i:04d}", "code", text, "local", path=f"f{i}.py", tags=("python",)).to_row() for i, text in enumerate(texts)
    ]


def test_a_shard_has_the_bytes_of_its_row_groups_written_whole_however_rows_are_batched(tmp_path, monkeypatch):
    """Rows go into Arrow a batch at a time (not held as Python strings for a whole group); the
    file is byte for byte the one each group written as a single table gives."""
    monkeypatch.setattr(writers, "ROW_GROUP_BYTES", 1_500_000)  # past the writer's 1 MB pages
    monkeypatch.setattr(writers, "WRITE_BATCH_ROWS", 4)  # so these few rows make several batches
    rows = installed_code_documents(150)

    def write_whole_groups(path):
        groups = [[]]
        for row in rows:  # the groups row_group_tables cuts: about ROW_GROUP_BYTES of text each
            if groups[-1] and sum(map(writers.row_bytes, groups[-1])) + writers.row_bytes(row) > writers.ROW_GROUP_BYTES:
                groups.append([])
            groups[-1].append(row)
        with pq.ParquetWriter(path, arrow.DOCUMENT, compression=writers.PARQUET_COMPRESSION, write_batch_size=4) as w:
            for group in groups:
                w.write_table(pa.Table.from_pylist(group, schema=arrow.DOCUMENT))
        return len(groups)

    groups = write_whole_groups(str(tmp_path / "whole.parquet"))
    assert groups >= 3
    whole = (tmp_path / "whole.parquet").read_bytes()
    for batch_bytes in (1, 30_000, 10**9):  # a batch every 4 rows, every few files, one per group
        monkeypatch.setattr(writers, "BATCH_BYTES", batch_bytes)
        path = str(tmp_path / f"batched-{batch_bytes}.parquet")
        writers.write_parquet(path, arrow.DOCUMENT, rows)
        assert (tmp_path / f"batched-{batch_bytes}.parquet").read_bytes() == whole, batch_bytes
        assert pq.ParquetFile(path).metadata.num_row_groups == groups
    assert pq.read_table(str(tmp_path / "whole.parquet")).to_pylist() == rows


def test_external_sort_writes_the_bytes_of_one_sorted_write(tmp_path, monkeypatch):
    """Shards merged from many small runs are byte for byte the shards written from sorted lists."""
    monkeypatch.setattr(writers, "RUN_BYTES", 4000)  # a run every few records: many runs per shard
    records = [
        Rejected(f"id-{(i * 7919) % 500:03d}", "s", "r", "x" * (i % 97), "local", f"repo{i % 5}", f"p{i}") for i in range(500)
    ]
    version = tmp_path / "v"
    with local_pipeline() as p:
        inputs = (p | "Half1" >> beam.Create(records[:250]), p | "Half2" >> beam.Create(records[250:]))
        inputs | writers.WriteParquetShards(str(version), "rejected", arrow.REJECTED, 3)
    runs = storage.list_files(str(version / SCRATCH_DIR))
    assert len(runs) >= 3 * 4  # several runs per shard
    for shard in range(3):
        rows = sorted(
            (r.to_row() for r in records if writers.shard_of(r.id, 3) == shard), key=lambda row: (row["id"], row["path"])
        )
        expected = tmp_path / f"expected-{shard}.parquet"
        writers.write_parquet(str(expected), arrow.REJECTED, rows)
        written = version / "rejected" / writers.shard_name("part", shard, 3, ".parquet")
        assert written.read_bytes() == expected.read_bytes()
        assert pq.ParquetFile(written).metadata.num_rows == len(rows) > 0
