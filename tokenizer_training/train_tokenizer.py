"""The tokenizer stage: a version's documents → `<version>/tokenizer/` (paper §3.4).

Trains the whitespace-spanning byte-level BPE of `tokenizer.py` on a deterministic
sample of the documents (`sample.py`), or copies the tokenizer of an earlier version
(`tokenizer.reuse_from`) so that old and new shards share token ids. The manifest
gets the tokenizer's hash, its vocabulary and special-token ids, and what it was
trained on.

Training runs in this process (the BPE trainer is multi-threaded Rust); memory is
bounded by the sample, not the corpus.
"""

from __future__ import annotations

import hashlib
import logging
import time

from infra import storage
from infra.writers import file_info
from schemas.config import ConfigError
from schemas.errors import EmptyCorpusError
from tokenizer_training.sample import choose_sample, document_files, iter_sample
from tokenizer_training.tokenizer import (
    EOM,
    EOT,
    MASK_TOKEN_FORMAT,
    PAD,
    SPECIAL_TOKENS,
    TOKENIZER_DIR,
    TOKENIZER_FILE,
    load_raw_tokenizer,
    save_tokenizer,
    tokenizer_dir,
    tokenizer_hash,
    train_tokenizer,
)

STAGE = "tokenizer"

log = logging.getLogger(__name__)


class _Measured:
    """Counts the documents and UTF-8 bytes of a text stream as it is consumed."""

    def __init__(self, texts):
        self.texts = texts
        self.documents = 0
        self.bytes = 0

    def __iter__(self):
        for text in self.texts:
            self.documents += 1
            self.bytes += len(text.encode("utf-8"))
            yield text


def run_tokenizer(ctx) -> dict:
    """Train (or reuse) the version's tokenizer; return its manifest part."""
    config = ctx.config.tokenizer
    out = storage.join(ctx.output_dir, TOKENIZER_DIR)
    storage.delete_tree(out)
    if config.reuse_from:
        trained_on = _copy_tokenizer(ctx.config.resolve(config.reuse_from), out)
    else:
        trained_on = _train(ctx, out)
    tokenizer = load_raw_tokenizer(out)
    entry = {
        "hash": tokenizer_hash(out),
        "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
        "special_tokens": {t: tokenizer.token_to_id(t) for t in (EOT, PAD, EOM, MASK_TOKEN_FORMAT.format(0))},
        **trained_on,
    }
    drop_file_entries(ctx.manifest, TOKENIZER_DIR + "/")
    return {"tokenizer": entry, "files": _file_entries(ctx.output_dir, out)}


def _train(ctx, out: str) -> dict:
    config = ctx.config.tokenizer
    paths = document_files(ctx.input_dir)
    seed = ctx.config.seed
    chosen = choose_sample(paths, seed, config.sample_documents, config.sample_fraction, config.sample_bytes)
    texts = _Measured(iter_sample(paths, chosen))
    started = time.monotonic()
    tokenizer = train_tokenizer(texts, config.vocab_size, config.min_frequency)
    log.info(
        "[%s] trained %d tokens on %d documents (%d bytes) in %.1fs",
        STAGE,
        tokenizer.get_vocab_size(),
        texts.documents,
        texts.bytes,
        time.monotonic() - started,
    )
    if not texts.documents and not ctx.manifest.get("documents", 1):
        said = rejections(ctx.manifest)
        raise EmptyCorpusError(f"tokenizer: the corpus kept no document, so there is nothing to train on: {said}")
    if not texts.documents:
        raise ConfigError("tokenizer: the sample holds no document; raise tokenizer.sample_fraction or sample_bytes")
    save_tokenizer(tokenizer, out)
    return {"sample": {"documents": texts.documents, "bytes": texts.bytes}, "reused_from": None}


def rejections(manifest: dict, top: int = 5) -> str:
    """The corpus's rejections in one line: how many, and the commonest (stage, reason) pairs."""
    counts = manifest.get("counts", {})
    found = [(n, f"{stage}/{reason}") for stage, entry in counts.items() for reason, n in entry.get("rejected", {}).items()]
    found.sort(key=lambda x: (-x[0], x[1]))
    shown = ", ".join(f"{what} {n}" for n, what in found[:top])
    return f"{sum(n for n, _ in found)} records were rejected ({shown or 'none'})"


def _copy_tokenizer(source: str, out: str) -> dict:
    """Copy an earlier tokenizer after checking it has this project's special tokens."""
    source_dir = tokenizer_dir(source)
    if not storage.exists(storage.join(source_dir, TOKENIZER_FILE)):
        raise ConfigError(f"tokenizer.reuse_from: no {TOKENIZER_FILE} in {source!r} or its {TOKENIZER_DIR}/")
    tokenizer = load_raw_tokenizer(source_dir)
    wrong = [t for i, t in enumerate(SPECIAL_TOKENS) if tokenizer.token_to_id(t) != i]
    if wrong:
        raise ConfigError(f"tokenizer.reuse_from: {source!r} lacks the special tokens {wrong[:3]}... at their ids")
    storage.copy_tree(source_dir, out)
    return {"reused_from": {"path": source, "hash": tokenizer_hash(source_dir)}}


def _file_entries(version_dir: str, directory: str) -> dict:
    entries = {}
    for name in storage.list_files(directory):
        path = storage.join(directory, name)
        data = storage.read_bytes(path)
        info = file_info(version_dir, path, hashlib.sha256(data).hexdigest(), len(data))
        entries[info.pop("path")] = info
    return entries


def drop_file_entries(manifest: dict, prefix: str) -> None:
    """A rerun replaces the whole directory, so earlier file entries under it go."""
    for path in [p for p in manifest.get("files", {}) if p.startswith(prefix)]:
        del manifest["files"][path]
