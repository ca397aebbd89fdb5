"""Binarize's encoder: tiktoken built from tokenizer.json's merges, for the same ids as `tokenizers`, faster.

`tokenizer.json` stays the artifact users load; this module only reads it. Why the ids are the same:

- Pieces. Our tokenizer has no normalizer; its pre-tokenizer cuts runs of newlines from the text
  between them (`tokenizer.NEWLINES`, isolated) and maps each piece's UTF-8 bytes to GPT-2's printable
  byte alphabet. `SPLIT_PATTERN` cuts the same pieces, and tiktoken ranks raw bytes, so each token is
  mapped back through GPT-2's byte table (`byte_of_char`).
- Merges. `tokenizers` applies the merge list in order, pair by pair; tiktoken merges the adjacent
  pair whose concatenation has the lowest rank. The two agree when each learned token comes from
  exactly one merge and ranks follow the merge list (tiktoken's own note: equivalent "as long as we
  train BPE the way we currently do"). Our trainer gives the learned tokens ids in merge order, so
  the rank of a token is its id and tiktoken returns our ids directly.
- Special tokens. Binarize encodes their text as plain text (`encode_special_tokens`), which is
  tiktoken's `encode_ordinary`; `<|endoftext|>` goes first, as the post-processor puts it.

`encoder_for` checks those conditions on the file; a tokenizer.json that breaks one (another
pre-tokenizer, a merge that makes a token twice, ids out of merge order) is encoded with `tokenizers`.
"""

from __future__ import annotations

import functools
import json
import logging

import numpy as np
import tiktoken
from tokenizers import Tokenizer

from tokenizer_training.tokenizer import EOT, SPECIAL_TOKENS, add_document_start, new_tokenizer

SPLIT_PATTERN = r"\n+|[^\n]+"  # the pieces of new_tokenizer's pre-tokenizer: runs of newlines, and the text between
COMPARED_PARTS = ("normalizer", "pre_tokenizer", "post_processor")

log = logging.getLogger(__name__)


class NotEquivalent(ValueError):
    """tiktoken would not give this tokenizer.json's ids; the message says which condition fails."""


@functools.cache
def byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet (what `pre_tokenizers.ByteLevel` maps each byte to), reversed."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + i): b for i, b in enumerate(others)}


@functools.cache
def _latin1_of_char() -> dict[int, int]:
    """byte_of_char for str.translate: each alphabet character becomes the code point of its byte."""
    return {ord(c): b for c, b in byte_of_char().items()}


def token_bytes(token: str) -> bytes:
    """The raw bytes a byte-level token stands for."""
    return token.translate(_latin1_of_char()).encode("latin-1")


@functools.cache
def _reference() -> dict:
    """The parts of tokenizer.json that `train_tokenizer` writes whatever it learns."""
    tokenizer = new_tokenizer()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    add_document_start(tokenizer)
    saved = json.loads(tokenizer.to_str())
    model = {k: v for k, v in saved["model"].items() if k not in ("vocab", "merges")}
    return {"model": model, **{part: saved[part] for part in COMPARED_PARTS}}


def mergeable_ranks(saved: dict) -> dict[bytes, int]:
    """tiktoken's ranks (raw bytes → our id) for a parsed tokenizer.json, or NotEquivalent saying why not."""
    reference = _reference()
    for part in COMPARED_PARTS:
        if saved.get(part) != reference[part]:
            raise NotEquivalent(f"its {part} is not the one train_tokenizer writes")
    model = saved["model"]
    if {k: v for k, v in model.items() if k not in ("vocab", "merges")} != reference["model"]:
        raise NotEquivalent("its BPE model's settings are not the ones train_tokenizer writes")
    added = saved["added_tokens"]
    if [(t["id"], t["content"], t["special"]) for t in added] != [(i, t, True) for i, t in enumerate(SPECIAL_TOKENS)]:
        raise NotEquivalent("its added tokens are not our special tokens at their ids")
    vocab = model["vocab"]
    merged = ["".join(m.split(" ", 1) if isinstance(m, str) else m) for m in model["merges"]]
    first_byte, first_merge = len(added), len(added) + 256
    if sorted(vocab[c] for c in byte_of_char() if c in vocab) != list(range(first_byte, first_merge)):
        raise NotEquivalent("its 256 byte tokens do not follow the special tokens")
    if [vocab.get(t) for t in merged] != list(range(first_merge, first_merge + len(merged))):
        raise NotEquivalent("its learned tokens' ids do not follow the merge list one to one")
    if len(vocab) != first_merge + len(merged):
        raise NotEquivalent("its vocabulary has tokens that are neither bytes nor merges")
    return {token_bytes(token): i for token, i in vocab.items() if i >= first_byte}


class TiktokenEncoder:
    """Token ids of many documents through tiktoken, `<|endoftext|>` first, in `dtype` arrays.

    One thread: a pipeline spreads its work over worker processes, one per core. The special
    tokens are registered but not allowed, so their text is encoded as plain text (as
    `encode_ordinary` does); `encode_to_numpy` then spares a Python list per document. With no
    special token registered it ran 1.6x slower here: tiktoken's search for them is then a
    pattern that matches everywhere.
    """

    name = "tiktoken"

    def __init__(self, saved: dict, dtype: str):
        specials = {t["content"]: t["id"] for t in saved["added_tokens"]}
        self.encoding = tiktoken.Encoding(
            "code-corpus", pat_str=SPLIT_PATTERN, mergeable_ranks=mergeable_ranks(saved), special_tokens=specials
        )
        self.first = specials[EOT]  # what the post-processor puts first
        self.dtype = dtype

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return [self._encode_one(text) for text in texts]

    def _encode_one(self, text: str) -> np.ndarray:
        ids = self.encoding.encode_to_numpy(text, allowed_special=set(), disallowed_special=())
        tokens = np.empty(len(ids) + 1, dtype=self.dtype)
        tokens[0] = self.first
        tokens[1:] = ids
        return tokens


class TokenizersEncoder:
    """The same through `tokenizers` (for a tokenizer.json tiktoken cannot reproduce)."""

    name = "tokenizers"

    def __init__(self, text: str, dtype: str):
        self.tokenizer = Tokenizer.from_str(text)
        self.tokenizer.encode_special_tokens = True  # document text never yields a sentinel id
        self.dtype = dtype

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return [np.array(e.ids, dtype=self.dtype) for e in self.tokenizer.encode_batch_fast(texts)]


def encoder_for(text: str, dtype: str) -> TiktokenEncoder | TokenizersEncoder:
    """The encoder for a tokenizer.json's text: tiktoken where it gives the same ids, else `tokenizers`."""
    saved = json.loads(text)
    try:
        return TiktokenEncoder(saved, dtype)
    except NotEquivalent as e:
        log.info("binarize encodes with tokenizers: tiktoken would differ on this tokenizer.json (%s)", e)
        return TokenizersEncoder(text, dtype)
