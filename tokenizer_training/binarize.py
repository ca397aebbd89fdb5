"""The binarize stage: documents + tokenizer → Megatron token shards, as one Beam pipeline.

    documents/*.parquet ─ (file, row group) ─ ReadDocuments ─ BatchDocuments ─ Tokenize ─┐
      ┌──────────────────────────────────────────────────────────────────────────────────┘
      ├─ (split, shard) → (id, tokens) ─ SortIntoShards (runs on storage) ─ WriteShards ─ shards/{train,valid}-NNNNN.{bin,idx}
      ├─ Rejected (empty documents) ─ WriteRejected ─ shards/rejected/*.parquet
      └─ tallies ─ SumTallies ─ counts["binarize"]

Each document becomes one sequence: `<|endoftext|>` then its tokens, whole (long
documents are kept; the trainer cuts its own windows), encoded by tiktoken built from
the tokenizer's merges (`encoder.py`: the same ids as `tokenizers`). Literal special-token text
inside a document (say `<|endofmask|>` in a source file) is encoded as plain text, so only
the trainer puts real sentinels into a sequence.

A document goes to `valid` when `record_rng(seed, id, "valid")` falls below
`binarize.valid_fraction`, and to shard `shard_of(id, n)` of its split; within a
shard, documents are sorted by id. The same documents and tokenizer therefore
always give the same bytes. A shard that gets no documents is not written (an empty
.bin cannot be memory-mapped by Megatron's reader). The tokens do not cross a
shuffle: each bundle spills sorted runs of (id, tokens) to scratch files, and the
shard's writer merges them by id, holding a frame of each run, never the shard. The
documents are read a row group per element and a record batch at a time: Beam's
ReadFromParquet turns a whole row group (up to 32 MB of text) into Python rows at once,
in every worker.
"""

from __future__ import annotations

import posixpath

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from infra import storage
from infra.accounting import check_counts
from infra.runtime import configure_worker
from infra.spill import SCRATCH_DIR
from infra.version import document_paths
from infra.writers import SortIntoShards, WriteParquetShards, file_info, merged_runs, shard_of
from schemas import arrow, stage_names
from schemas.config import BinarizeConfig
from schemas.records import Rejected, record_rng
from tokenizer_training.encoder import encoder_for
from tokenizer_training.indexed_dataset import IndexedDatasetBuilder, bin_path, idx_path, token_dtype
from tokenizer_training.tokenizer import TOKENIZER_DIR, TOKENIZER_FILE, load_raw_tokenizer, tokenizer_hash
from transforms.base import ApplyStage
from transforms.record_fn import RecordFn
from transforms.stage_outputs import StageOutputs, by_path, read_counts_and_files, write_counts_and_files

SHARDS_DIR = "shards"
SPLITS = ("train", "valid")
READ_COLUMNS = ["id", "text", "source", "repo", "path"]
BATCH_CHARS = 1 << 20  # characters per encoder call (tokenizers spreads a batch over all cores)


def row_groups_of(version_dir: str, manifest: dict | None = None) -> list[tuple[str, int]]:
    """(documents file, row group index) of every row group of the documents the manifest lists: the units read."""
    units = []
    for path in document_paths(version_dir, manifest):
        with storage.parquet_file(path) as f:
            units += [(path, group) for group in range(f.metadata.num_row_groups)]
    return units


def rows_of(unit: tuple[str, int]):
    """One row group's documents, as dicts of READ_COLUMNS, a record batch at a time."""
    path, group = unit
    for batch in storage.parquet_batches(path, READ_COLUMNS, storage.TEXT_BATCH_ROWS, row_groups=[group]):
        yield from batch.to_pylist()


def split_of(seed: int, doc_id: str, valid_fraction: float) -> str:
    """train or valid, fixed by the document id (and the run seed)."""
    return "valid" if record_rng(seed, doc_id, "valid").random() < valid_fraction else "train"


def _text_size(row: dict) -> int:
    return len(row["text"] or "") + 1


def shard_prefix(version_dir: str, split: str, index: int) -> str:
    return posixpath.join(version_dir, SHARDS_DIR, f"{split}-{index:05d}")


class TokenizeDocumentsFn(RecordFn):
    """A batch of document rows → ((split, shard), (id, token ids)) each; empty ones → Rejected.

    Each row is one read; the stats count each split's documents and tokens.
    """

    stage = stage_names.BINARIZE
    each_output_is_an_input = True

    def __init__(self, tokenizer_path: str, seed: int, valid_fraction: float, shards: dict, dtype: str):
        self.tokenizer_path = tokenizer_path
        self.seed = seed
        self.valid_fraction = valid_fraction
        self.shards = shards  # split → number of shards
        self.dtype = dtype

    def setup(self):
        with storage.open_file(self.tokenizer_path) as f:
            self.encoder = encoder_for(f.read().decode("utf-8"), self.dtype)  # special-token text encodes as text
        configure_worker()

    def __call__(self, rows):
        kept = []
        for row in rows:
            if row["text"]:
                kept.append(row)
                continue
            where = (row["source"], row["repo"], row["path"])
            yield Rejected(row["id"], stage_names.BINARIZE, "empty", "document text is empty", *where)
        encoded = self.encoder.encode([row["text"] for row in kept]) if kept else []
        for row, tokens in zip(kept, encoded):
            split = split_of(self.seed, row["id"], self.valid_fraction)
            self.count(f"{split}_tokens", len(tokens))
            self.count(f"{split}_documents")
            yield (split, shard_of(row["id"], self.shards[split])), (row["id"], tokens)


def shard_and_id(element: tuple) -> tuple[tuple]:
    """((split, shard), (id, tokens)) → what the run writer sorts by: (shard, id, the tokens)."""
    shard, (doc_id, tokens) = element
    return ((shard, doc_id, tokens),)


class WriteTokenShardFn(beam.DoFn):
    """One shard's sorted runs of (id, tokens) → merged by id → .bin/.idx; yields their manifest entries."""

    def __init__(self, version_dir: str, dtype: str):
        self.version_dir = version_dir
        self.dtype = dtype

    def setup(self):
        configure_worker()

    def process(self, shard_runs):
        (split, index), runs = shard_runs
        prefix = shard_prefix(self.version_dir, split, index)
        builder = IndexedDatasetBuilder(bin_path(prefix), np.dtype(self.dtype).type)
        for _, tokens in merged_runs(runs):
            builder.add_document(tokens)
        written = builder.finalize(idx_path(prefix))
        for kind, path in (("bin", bin_path(prefix)), ("idx", idx_path(prefix))):
            sha, size, md5 = written[kind]
            yield dict(file_info(self.version_dir, path, sha, size, written["sequences"], md5), tokens=written["tokens"])


class BinarizeDocuments(beam.PTransform):
    """(documents file, row group) units → token shards written into `version_dir`, Rejected and tallies.

    Its outputs' `kept` are the ((split, shard), (id, tokens)) of every document kept, and
    `files` the entries of the .bin/.idx files written.
    """

    stage = stage_names.BINARIZE

    def __init__(self, version_dir: str, tokenizer_path: str, seed: int, config: BinarizeConfig, dtype: str):
        super().__init__()
        self.version_dir = version_dir
        self.tokenize = TokenizeDocumentsFn(
            tokenizer_path, seed, config.valid_fraction, {"train": config.num_shards, "valid": config.valid_shards}, dtype
        )

    def expand(self, units) -> StageOutputs:
        tokenized = (
            units
            | "ReadDocuments" >> beam.FlatMap(rows_of)
            | "BatchDocuments"
            >> beam.BatchElements(min_batch_size=BATCH_CHARS, max_batch_size=BATCH_CHARS, element_size_fn=_text_size)
            | "Tokenize" >> ApplyStage(self.tokenize)
        )
        scratch = posixpath.join(self.version_dir, SCRATCH_DIR)
        written = (
            tokenized.kept
            | "SortIntoShards" >> SortIntoShards(scratch, shard_and_id, lambda tokens: tokens.nbytes)
            | "WriteShards" >> beam.ParDo(WriteTokenShardFn(self.version_dir, self.tokenize.dtype))
        )
        return tokenized._replace(files=(written,))


def build_binarize(
    p: beam.Pipeline,
    input_dir: str,
    out_dir: str,
    tokenizer_path: str,
    seed: int,
    config,
    dtype: str,
    manifest: dict | None = None,
):
    """Wire the binarize graph into `p`; its file list and tallies land in small JSON files under out_dir."""
    binarized = (
        p
        | "RowGroups" >> beam.Create(row_groups_of(input_dir, manifest))
        | "SpreadRowGroups" >> beam.Reshuffle()
        | "Binarize" >> BinarizeDocuments(out_dir, tokenizer_path, seed, config, dtype)
    )
    written_rejected = binarized.rejected | "WriteRejected" >> WriteParquetShards(
        out_dir, posixpath.join(SHARDS_DIR, "rejected"), arrow.REJECTED, 1
    )
    write_counts_and_files(out_dir, [binarized.tally], [*binarized.files, written_rejected])


def binarize_version(
    version_dir: str, output_dir: str, config: BinarizeConfig, seed: int, options: PipelineOptions, manifest: dict | None = None
) -> dict:
    """Write `<output_dir>/shards/` from `version_dir`'s documents (those `manifest`, by default the version's
    own, lists) and tokenizer; return the manifest part."""
    tokenizer_path = posixpath.join(version_dir, TOKENIZER_DIR, TOKENIZER_FILE)
    if not storage.exists(tokenizer_path):
        raise FileNotFoundError(f"no {TOKENIZER_DIR}/{TOKENIZER_FILE} in {version_dir}; run the tokenizer stage")
    vocab_size = load_raw_tokenizer(posixpath.dirname(tokenizer_path)).get_vocab_size(with_added_tokens=True)
    dtype = np.dtype(token_dtype(vocab_size)).name
    storage.delete_tree(posixpath.join(output_dir, SHARDS_DIR))
    with beam.Pipeline(options=options) as p:
        build_binarize(p, version_dir, output_dir, tokenizer_path, seed, config, dtype, manifest)
    storage.delete_tree(posixpath.join(output_dir, SCRATCH_DIR))

    counts, files = read_counts_and_files(output_dir)
    entry = counts.get(stage_names.BINARIZE, {"in": 0, "kept": 0, "rejected": {}, "stats": {}})
    splits = shard_summary(files)
    sequences = sum(s["documents"] for s in splits.values())
    check_counts({stage_names.BINARIZE: entry}, [], {"shards": ([stage_names.BINARIZE], sequences)})
    return {
        "counts": {stage_names.BINARIZE: entry},
        "files": by_path(files),
        "shards": {
            "format": "MMIDIDX",
            "dtype": dtype,
            "vocab_size": vocab_size,
            "tokenizer_hash": tokenizer_hash(posixpath.dirname(tokenizer_path)),
            "splits": splits,
        },
    }


def shard_summary(files: list[dict]) -> dict:
    """Per split: documents, tokens and the shards' .bin/.idx checksums, from the written-file list."""
    splits = {s: {"documents": 0, "tokens": 0, "shards": []} for s in SPLITS}
    by_prefix: dict = {}
    for f in sorted(files, key=lambda f: f["path"]):
        stem, ext = posixpath.splitext(f["path"])
        if ext in (".bin", ".idx"):
            by_prefix.setdefault(stem, {})[ext[1:]] = f
    for prefix, pair in sorted(by_prefix.items()):
        split = posixpath.basename(prefix).split("-")[0]
        shard = {"prefix": prefix, "documents": pair["idx"]["rows"], "tokens": pair["idx"]["tokens"]}
        shard.update({kind: {"sha256": pair[kind]["sha256"], "bytes": pair[kind]["bytes"]} for kind in ("bin", "idx")})
        splits[split]["shards"].append(shard)
        splits[split]["documents"] += shard["documents"]
        splits[split]["tokens"] += shard["tokens"]
    return splits
