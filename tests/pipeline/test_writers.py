"""Parquet shards are written in bounded row groups, so readers can stream them."""

from __future__ import annotations

import hashlib

import pyarrow.parquet as pq

from infra import storage, writers
from schemas import arrow
from schemas.records import Rejected


def rejected_rows(n: int, detail_bytes: int) -> list[dict]:
    return [Rejected(f"id{i:04d}", "filters", "long-line", "x" * detail_bytes, "local", "o/r", f"f{i}.py").to_row() for i in range(n)]


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
