"""A deterministic sample of a version's documents, streamed from its Parquet shards.

Each document gets a key from `record_rng(seed, id, "tokenizer-sample")`. The sample
is the `max_documents` documents with the lowest keys among those whose key is below
`fraction`: the same documents on every run, whatever the shard layout.

Two passes keep memory bounded by the sample: the first reads only ids and keeps
the chosen ones in a heap; the second streams texts in small batches and yields the
chosen ones. The corpus itself is never held.
"""

from __future__ import annotations

import heapq
import posixpath
from typing import Iterator

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas.records import record_rng

DOCUMENTS_DIR = "documents"
BATCH_ROWS = 256  # rows per Parquet read; documents can be up to read.max_file_bytes each


def document_files(version_dir: str) -> list[str]:
    """The version's documents/*.parquet, sorted."""
    pattern = posixpath.join(version_dir, DOCUMENTS_DIR, "*.parquet")
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    if not paths:
        raise FileNotFoundError(f"no {DOCUMENTS_DIR}/*.parquet in {version_dir}; run the corpus stage first")
    return paths


def iter_columns(paths: list[str], columns: list[str]) -> Iterator[dict]:
    """Rows of `columns` from the files in order, a batch at a time."""
    for path in paths:
        with FileSystems.open(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=columns):
                yield from batch.to_pylist()


def sample_key(seed: int, doc_id: str) -> float:
    return record_rng(seed, doc_id, "tokenizer-sample").random()


def choose_sample(paths: list[str], seed: int, max_documents: int, fraction: float) -> set[str]:
    """Ids of the sampled documents (pass 1: ids only)."""
    heap: list[tuple[float, str]] = []  # the lowest keys so far, as a max-heap of (-key, id)
    for row in iter_columns(paths, ["id"]):
        key = sample_key(seed, row["id"])
        if key >= fraction:
            continue
        item = (-key, row["id"])
        if len(heap) < max_documents:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return {doc_id for _, doc_id in heap}


def iter_sample(paths: list[str], chosen: set[str]) -> Iterator[str]:
    """The texts of the chosen documents (pass 2), in file and row order."""
    for row in iter_columns(paths, ["id", "text"]):
        if row["id"] in chosen and row["text"]:
            yield row["text"]
