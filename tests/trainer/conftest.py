"""A small dataset version with a learnable structure, built with the project's own tokenizer and shard writer.

Every document counts upwards from a random start, one two-digit number per token
(wrapping at MODULUS): "07 08 09 10". A masked run of numbers is therefore fully
determined by the numbers around it: a model that has learnt to infill gets it
exactly, guessing does not. The tokenizer is a word-level one (one id per number)
with the project's special tokens, packaged by the tokenizer stage's own code.
"""

from __future__ import annotations

import contextlib
import os
import random

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from infra.version import MANIFEST_FORMAT, write_manifest
from pipeline.stages import file_entries
from tokenizer_training.indexed_dataset import IndexedDatasetBuilder, token_dtype
from tokenizer_training.tokenizer import SPECIAL_TOKENS, add_document_start, save_tokenizer

DATASET = "counting"
VERSION = "v0001"
MODULUS = 30
HELD_OUT_STARTS = (3, 11, 17, 26)  # no training document starts here: documents that do are held out


def counting_text(start: int, length: int) -> str:
    return " ".join(f"{(start + i) % MODULUS:02d}" for i in range(length))


def counting_tokenizer() -> Tokenizer:
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *(f"{n:02d}" for n in range(MODULUS))])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS[1]))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins tokens with spaces
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    add_document_start(tokenizer)
    return tokenizer


def write_version(root: str, train_docs: int, valid_docs: int, seed: int = 0, min_len: int = 4, max_len: int = 7):
    """<root>/counting/v0001 with tokenizer/, shards/train-00000 and valid-00000, and a manifest."""
    rng = random.Random(seed)
    starts = [s for s in range(MODULUS) if s not in HELD_OUT_STARTS]
    texts = [counting_text(rng.choice(starts), rng.randint(min_len, max_len)) for _ in range(train_docs + valid_docs)]
    version = os.path.join(root, DATASET, VERSION)
    tokenizer = counting_tokenizer()
    save_tokenizer(tokenizer, os.path.join(version, "tokenizer"))
    os.makedirs(os.path.join(version, "shards"))
    dtype = token_dtype(tokenizer.get_vocab_size())
    for split, docs in (("train", texts[:train_docs]), ("valid", texts[train_docs:])):
        prefix = os.path.join(version, "shards", f"{split}-00000")
        builder = IndexedDatasetBuilder(prefix + ".bin", dtype)
        for text in docs:
            builder.add_document(tokenizer.encode(text).ids)
        builder.finalize(prefix + ".idx")
    files = {
        **file_entries(version, os.path.join(version, "tokenizer")),
        **file_entries(version, os.path.join(version, "shards")),
    }
    write_manifest(
        version,
        {"format": MANIFEST_FORMAT, "name": DATASET, "version": VERSION, "stages": ["binarize"], "files": files},
    )
    return version


@contextlib.contextmanager
def one_thread():
    """Train on one CPU thread: fast on a shared 2-core machine, and the same arithmetic as a
    subprocess started with OMP_NUM_THREADS=1, so losses can be compared bit for bit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _one_thread():
    """Every trainer test on one thread (module fixtures that train take `one_thread` themselves)."""
    with one_thread():
        yield
