"""The tokenizer stage: a version's documents → `<version>/tokenizer/` (paper §3.4).

Trains the whitespace-spanning byte-level BPE of `tokenizer.py` on a deterministic
sample of the documents (`sample.py`), or copies the tokenizer of an earlier version
(`tokenizer.reuse_from`) so that old and new shards share token ids. It returns the
manifest's `tokenizer` entry: the tokenizer's hash, its vocabulary and special-token
ids, and what it was trained on.

Training runs in this process (the BPE trainer is multi-threaded Rust); memory is
bounded by the sample, not the corpus.
"""

from __future__ import annotations

import logging
import time

from infra import storage
from schemas import stage_names
from schemas.config import ConfigError, TokenizerConfig
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


class EmptySampleError(ConfigError):
    """The sample to train on holds no document (the caller knows whether the corpus is empty too)."""


def make_tokenizer(
    version_dir: str, output_dir: str, config: TokenizerConfig, seed: int, reuse_from: str | None, manifest: dict | None = None
) -> dict:
    """Train the tokenizer on `version_dir`'s documents, or copy the one at `reuse_from` (a
    resolved path), into `<output_dir>/tokenizer/`; return the manifest's tokenizer entry.

    The documents are the files `manifest` lists (a run's manifest so far; by default the version's own)."""
    out = storage.join(output_dir, TOKENIZER_DIR)
    storage.delete_tree(out)
    if reuse_from:
        trained_on = _copy_tokenizer(reuse_from, out)
    else:
        trained_on = _train(version_dir, out, config, seed, manifest)
    tokenizer = load_raw_tokenizer(out)
    return {
        "hash": tokenizer_hash(out),
        "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
        "special_tokens": {t: tokenizer.token_to_id(t) for t in (EOT, PAD, EOM, MASK_TOKEN_FORMAT.format(0))},
        **trained_on,
    }


def _train(version_dir: str, out: str, config: TokenizerConfig, seed: int, manifest: dict | None) -> dict:
    paths = document_files(version_dir, manifest)
    chosen = choose_sample(paths, seed, config.sample_documents, config.sample_fraction, config.sample_bytes)
    texts = _Measured(iter_sample(paths, chosen))
    started = time.monotonic()
    tokenizer = train_tokenizer(texts, config.vocab_size, config.min_frequency)
    log.info(
        "[%s] trained %d tokens on %d documents (%d bytes) in %.1fs",
        stage_names.TOKENIZER,
        tokenizer.get_vocab_size(),
        texts.documents,
        texts.bytes,
        time.monotonic() - started,
    )
    if not texts.documents:
        raise EmptySampleError("tokenizer: the sample holds no document; raise tokenizer.sample_fraction or sample_bytes")
    save_tokenizer(tokenizer, out)
    return {"sample": {"documents": texts.documents, "bytes": texts.bytes}, "reused_from": None}


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
