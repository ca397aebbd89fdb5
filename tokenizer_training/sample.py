"""A deterministic sample of a version's documents, streamed from its Parquet shards.

Each document gets a key from `record_rng(seed, id, "tokenizer-sample")`. Taking
documents in key order among those whose key is below `fraction`, the sample is the
longest run that has at most `max_documents` documents and `max_bytes` bytes of text:
the same documents on every run, whatever the shard layout.

Two passes keep memory bounded by the sample: the first reads ids and text lengths
and keeps the candidates in a heap; the second streams texts in small batches and
yields the chosen ones. The corpus itself is never held.
"""

from __future__ import annotations

import heapq
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from infra import storage
from infra.version import DOCUMENTS_DIR, document_paths
from schemas.records import record_rng


def document_files(version_dir: str, manifest: dict | None = None) -> list[str]:
    """The version's documents/*.parquet as its manifest (`manifest`, or the version's own) lists them, sorted."""
    paths = document_paths(version_dir, manifest)
    if not paths:
        raise FileNotFoundError(f"no {DOCUMENTS_DIR}/*.parquet in {version_dir}; run the corpus stage first")
    return paths


def iter_batches(paths: list[str], columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Batches of `columns` from the files in order."""
    for path in paths:
        yield from storage.parquet_batches(path, columns, storage.TEXT_BATCH_ROWS)


def sample_key(seed: int, doc_id: str) -> float:
    return record_rng(seed, doc_id, "tokenizer-sample").random()


def choose_sample(paths: list[str], seed: int, max_documents: int, fraction: float, max_bytes: int) -> set[str]:
    """Ids of the sampled documents (pass 1: ids and text lengths only)."""
    heap: list[tuple[float, str, int]] = []  # the lowest keys so far, as a max-heap of (-key, id, bytes)
    for batch in iter_batches(paths, ["id", "text"]):
        sizes = pc.fill_null(pc.binary_length(batch.column("text")), 0).to_pylist()
        for doc_id, size in zip(batch.column("id").to_pylist(), sizes):
            key = sample_key(seed, doc_id)
            if key >= fraction or not size:
                continue
            item = (-key, doc_id, size)
            if len(heap) < max_documents:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
    chosen, total = set(), 0
    for _, doc_id, size in sorted(heap, reverse=True):  # lowest key first
        if total + size > max_bytes:
            break
        chosen.add(doc_id)
        total += size
    return chosen


def iter_sample(paths: list[str], chosen: set[str]) -> Iterator[str]:
    """The texts of the chosen documents (pass 2), in file and row order."""
    for batch in iter_batches(paths, ["id", "text"]):
        rows = [i for i, doc_id in enumerate(batch.column("id").to_pylist()) if doc_id in chosen]
        yield from batch.column("text").take(pa.array(rows, pa.int64())).to_pylist()  # typed: [] alone is null-typed
