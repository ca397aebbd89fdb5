"""Binarize's tiktoken encoder gives exactly the ids of `tokenizers` on tokenizer.json, or is not used."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers

from tokenizer_training.encoder import (
    NotEquivalent,
    TiktokenEncoder,
    TokenizersEncoder,
    encoder_for,
    mergeable_ranks,
)
from tokenizer_training.tokenizer import EOM, EOT, MASK_TOKEN_FORMAT, PAD, SPECIAL_TOKENS, train_tokenizer

# Installed packages of the main install whose files are code of several languages (C, Cython, Fortran, CSV too).
PACKAGES = ("numpy", "pyarrow", "markdown_it", "nbformat", "requests", "tokenizers", "yaml")
KINDS = (".py", ".pyi", ".h", ".c", ".cc", ".pyx", ".pxd", ".pxi", ".f90", ".f", ".csv", ".json", ".txt")
MARKUP = [EOT, PAD, EOM, MASK_TOKEN_FORMAT.format(0), MASK_TOKEN_FORMAT.format(255), "<|mask:", "|>", "<|endoftext"]
ODD = ["\r\n", "\r", "\t", "\x0b", "\x0c", "\x00", "\u00a0", "\u2028", "\u3000", "\ufeff", "   \n", "\n\n\n", " \t \n"]
NON_ASCII = ["café", "naïve", "日本語のコメント", "Привет", "مرحبا", "🙂👍🏽", "e\u0301", "\U0001f600", "ß∑∫√"]
CRAFTED = [
    f"x = '{EOT}'  # {EOM}\n{MASK_TOKEN_FORMAT.format(7)}def f():\n\treturn 1\r\n",
    "".join(MARKUP) + "\n" + "".join(ODD) + "".join(NON_ASCII),
    "# -*- coding: utf-8 -*-\n\ufeffs = '日本語'  \t\n\n\n\n    \x0c\n  pass\r\n\r\n",
    " " * 300 + "indented\n" + "\t" * 50 + "tabs\n" + "\n" * 40,
    "a" * 5000 + "\n" + "xyz" * 3000,
    "",
]


@functools.cache
def installed_files(kinds: tuple[str, ...]) -> list[str]:
    """Files of PACKAGES with these endings, ordered by a hash of their path."""
    paths = []
    for package in PACKAGES:
        root = os.path.dirname(importlib.util.find_spec(package).origin)
        for dirpath, _, names in os.walk(root):
            paths += [os.path.join(dirpath, n) for n in names if n.endswith(kinds)]
    return sorted(paths, key=lambda p: hashlib.sha256(p.rsplit("-packages", 1)[-1].encode()).hexdigest())


def installed_texts(kinds: tuple[str, ...], skip_bytes: int, total_bytes: int) -> list[str]:
    """The UTF-8 texts of installed_files past the first skip_bytes, total_bytes of them."""
    texts, seen = [], 0
    for path in installed_files(kinds):
        try:
            with open(path, encoding="utf-8", newline="") as f:  # newline="": keep \r\n as it is
                text = f.read(1 << 20)
        except (UnicodeDecodeError, OSError):
            continue
        if seen >= skip_bytes:
            texts.append(text)
        seen += len(text.encode("utf-8"))
        if seen >= skip_bytes + total_bytes:
            break
    return texts


def tokenizers_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """What binarize wrote before: `encode_batch_fast` with special-token text encoded as text."""
    tokenizer.encode_special_tokens = True
    return [e.ids for e in tokenizer.encode_batch_fast(texts)]


def differing(encoders: tuple[TiktokenEncoder, Tokenizer], texts: list[str]) -> list[int]:
    """The indexes of the texts whose ids from binarize's tiktoken encoder and from `tokenizers` differ."""
    ours = encoders[0].encode(texts)
    return [i for i, (a, b) in enumerate(zip(ours, tokenizers_ids(encoders[1], texts))) if a.tolist() != b]


def both_encoders(text: str) -> tuple[TiktokenEncoder, Tokenizer]:
    encoder = encoder_for(text, "uint32")
    assert isinstance(encoder, TiktokenEncoder)
    return encoder, Tokenizer.from_str(text)


@pytest.fixture(scope="module")
def small_tokenizer() -> str:
    """tokenizer.json of a 2,000-token BPE trained on 300 KB of installed Python."""
    return train_tokenizer(installed_texts((".py",), 0, 300_000), 2000, 2).to_str()


@pytest.fixture(scope="module")
def small_encoders(small_tokenizer) -> tuple[TiktokenEncoder, Tokenizer]:
    return both_encoders(small_tokenizer)


@pytest.fixture(scope="module")
def small_vocabulary(small_tokenizer) -> list[str]:
    """The small tokenizer's learned tokens as text (a token that ends inside a character decodes to U+FFFD)."""
    tokenizer = Tokenizer.from_str(small_tokenizer)
    return tokenizer.decode_batch([[i] for i in range(len(SPECIAL_TOKENS), tokenizer.get_vocab_size())])


def test_tiktoken_gives_tokenizers_ids_on_installed_code_markup_and_odd_text(small_encoders):
    installed = installed_texts(KINDS, 300_000, 600_000)
    assert len(installed) > 50 and any(not t.isascii() for t in installed)
    assert differing(small_encoders, installed + CRAFTED) == []


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_tiktoken_gives_tokenizers_ids_on_any_mix_of_tokens_markup_and_odd_text(small_encoders, small_vocabulary, data):
    pieces = st.sampled_from(small_vocabulary) | st.sampled_from(MARKUP + ODD + NON_ASCII) | st.text(max_size=5)
    texts = data.draw(st.lists(st.lists(pieces, max_size=60).map("".join), min_size=1, max_size=8))
    assert differing(small_encoders, texts) == []


def test_the_encoder_puts_endoftext_first_and_fills_the_dtype_asked_for(small_tokenizer):
    encoder = encoder_for(small_tokenizer, "uint16")
    arrays = encoder.encode(["import os\n", f"{EOT}\n", ""])
    assert [a.dtype for a in arrays] == [np.dtype("uint16")] * 3
    assert [a[0] for a in arrays] == [0, 0, 0] and arrays[2].tolist() == [0]
    assert 0 not in arrays[1][1:].tolist()  # the text <|endoftext|> is not the token


def with_changes(text: str, change) -> str:
    saved = json.loads(text)
    change(saved)
    return json.dumps(saved)


def swap_two_learned_ids(saved: dict) -> None:
    vocab = saved["model"]["vocab"]
    first, second = (t for t, i in vocab.items() if i in (600, 601))
    vocab[first], vocab[second] = vocab[second], vocab[first]


def gpt2_pre_tokenizer(saved: dict) -> None:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    saved["pre_tokenizer"] = json.loads(tokenizer.to_str())["pre_tokenizer"]


CHANGES = {
    "pre_tokenizer": gpt2_pre_tokenizer,
    "merge list": swap_two_learned_ids,
    "neither bytes nor merges": lambda s: s["model"]["vocab"].update(extra=len(s["model"]["vocab"])),
    "added tokens": lambda s: s["added_tokens"][1].update(special=False),
    "settings": lambda s: s["model"].update(ignore_merges=True),
}


@pytest.mark.parametrize("condition", sorted(CHANGES))
def test_a_tokenizer_json_tiktoken_would_not_match_is_encoded_by_tokenizers(small_tokenizer, condition):
    changed = with_changes(small_tokenizer, CHANGES[condition])
    with pytest.raises(NotEquivalent, match=condition):
        mergeable_ranks(json.loads(changed))
    encoder = encoder_for(changed, "uint32")
    texts = ["def f(x):\n    return x\n", f"{EOM}{EOT} é\r\n"]
    assert isinstance(encoder, TokenizersEncoder)
    assert [a.tolist() for a in encoder.encode(texts)] == tokenizers_ids(Tokenizer.from_str(changed), texts)


def test_our_special_tokens_precede_the_bytes_as_the_ranks_expect(small_tokenizer):
    ranks = mergeable_ranks(json.loads(small_tokenizer))
    assert sorted(ranks[bytes([b])] for b in range(256)) == list(range(len(SPECIAL_TOKENS), len(SPECIAL_TOKENS) + 256))
    assert min(i for t, i in ranks.items() if len(t) > 1) == len(SPECIAL_TOKENS) + 256


@pytest.mark.slow
def test_tiktoken_gives_tokenizers_ids_with_a_full_vocabulary_on_3_mb_of_installed_code():
    """The default 50,000-token vocabulary (long whitespace-spanning tokens), trained on 2 MB, on 3 MB held out."""
    text = train_tokenizer(installed_texts((".py",), 0, 2_000_000), 50_000, 2).to_str()
    texts = installed_texts(KINDS, 2_000_000, 3_000_000) + CRAFTED
    assert len(texts) > 200
    assert differing(both_encoders(text), texts) == []
