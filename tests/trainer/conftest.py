"""A small dataset version with a learnable structure, built with the project's own tokenizer and shard writer.

Every document counts upwards from a random start, one two-digit number per token
(wrapping at MODULUS): "07 08 09 10". A masked run of numbers is therefore fully
determined by the numbers around it: a model that has learnt to infill gets it
exactly, guessing does not. The tokenizer is a word-level one (one id per number)
with the project's special tokens, packaged by the tokenizer stage's own code.
"""

from __future__ import annotations

import os
import random

import pytest

from pipeline.version import MANIFEST_FORMAT, write_manifest
from tokenizer_training.indexed_dataset import IndexedDatasetBuilder, token_dtype
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from tokenizer_training.tokenizer import SPECIAL_TOKENS, add_document_start, save_tokenizer

DATASET = "counting"
VERSION = "v0001"


MODULUS = 30


def counting_text(rng: random.Random, length: int) -> str:
    start = rng.randrange(MODULUS)
    return " ".join(f"{(start + i) % MODULUS:02d}" for i in range(length))


def counting_tokenizer() -> Tokenizer:
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *(f"{n:02d}" for n in range(MODULUS))])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS[1]))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins tokens with spaces
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    add_document_start(tokenizer)
    return tokenizer


def write_version(root: str, train_docs: int, valid_docs: int, seed: int = 0, min_len: int = 5, max_len: int = 20) -> str:
    """<root>/counting/v0001 with tokenizer/, shards/train-00000 and valid-00000, and a manifest."""
    rng = random.Random(seed)
    texts = [counting_text(rng, rng.randint(min_len, max_len)) for _ in range(train_docs + valid_docs)]
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
    write_manifest(
        version,
        {"format": MANIFEST_FORMAT, "name": DATASET, "version": VERSION, "stages": ["binarize"], "files": {}},
    )
    return version


@pytest.fixture(scope="session")
def counting_version(tmp_path_factory) -> str:
    return write_version(str(tmp_path_factory.mktemp("counting")), train_docs=400, valid_docs=40)
