"""The InCoder tokenizer: byte-level BPE whose tokens may span spaces and tabs (paper §3.4).

GPT-2's pre-tokenizer cuts text at every space, so `import numpy as np` costs at
least four tokens. Here the only cut is at line breaks: each run of newlines is its
own piece and everything between them (spaces, tabs, punctuation, words) is one piece
that BPE may merge freely, so frequent idioms and indentation become single tokens.
Tokens never contain a newline together with other text.

Special tokens (single ids, before the learned vocabulary), named as facebook/incoder's
released tokenizer and example code name them, so stop strings and scripts written
for InCoder work on our checkpoints (docs/tokenizer.md compares the two):

    <|endoftext|>   id 0, prepended to every encoded document (InCoder's bos_token, id 0)
    <pad>           id 1, padding for batches (InCoder's pad_token_id 1)
    <|endofmask|>   id 2, end of a moved span (the paper's <EOM>, §2)
    <|mask:0|> ... <|mask:255|>   ids 3-258, span sentinels (the paper's <Mask:k>)

The packaged directory loads with `transformers.AutoTokenizer.from_pretrained(dir)`;
decoding with `clean_up_tokenization_spaces=False` gives the text back exactly.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from infra import storage
from infra.writers import write_json

EOT = "<|endoftext|>"
PAD = "<pad>"
EOM = "<|endofmask|>"
MASK_TOKEN_FORMAT = "<|mask:{}|>"
NUM_MASKS = 256  # the paper samples up to 256 spans per document (§2)
MASKS = tuple(MASK_TOKEN_FORMAT.format(k) for k in range(NUM_MASKS))
SPECIAL_TOKENS = (EOT, PAD, EOM, *MASKS)  # ids 0, 1, 2, 3..258

# InCoder's context window (§2.2 footnote 3; facebook/incoder-1B's tokenizer_config.json): what
# transformers warns about and truncates to. The paper presets (1.3b, 6.7b) train at this length.
MODEL_MAX_LENGTH = 2048

TOKENIZER_DIR = "tokenizer"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
TRANSFORMERS_CONFIG = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": EOT,
    "eos_token": EOT,
    "pad_token": PAD,
    "additional_special_tokens": [EOM, *MASKS],
    "clean_up_tokenization_spaces": False,  # the cleanup deletes spaces before punctuation
    "model_max_length": MODEL_MAX_LENGTH,
}
NEWLINES = r"\n+"


def new_tokenizer() -> Tokenizer:
    """An untrained tokenizer with InCoder's pre-tokenization, decoder and post-processor."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(NEWLINES), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def bpe_trainer(vocab_size: int, min_frequency: int) -> trainers.BpeTrainer:
    """A byte-level BPE trainer for `vocab_size` learned tokens plus the special tokens."""
    return trainers.BpeTrainer(
        vocab_size=vocab_size + len(SPECIAL_TOKENS),
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int) -> Tokenizer:
    """Learn `vocab_size` tokens (plus the special tokens) from a stream of texts."""
    tokenizer = new_tokenizer()
    tokenizer.train_from_iterator(texts, trainer=bpe_trainer(vocab_size, min_frequency))
    add_document_start(tokenizer)
    return tokenizer


def add_document_start(tokenizer: Tokenizer) -> None:
    """Prepend <|endoftext|> to every encoding (and between the texts of a pair)."""
    eot = tokenizer.token_to_id(EOT)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{EOT} $A", pair=f"{EOT} $A {EOT} $B", special_tokens=[(EOT, eot)]
    )


def save_tokenizer(tokenizer: Tokenizer, directory: str) -> None:
    """Write tokenizer.json plus the tokenizer_config.json transformers' AutoTokenizer reads.

    Written directly (not via transformers) so the pipeline itself needs only `tokenizers`;
    `directory` may be local or on cloud storage.
    """
    storage.write_bytes(storage.join(directory, TOKENIZER_FILE), tokenizer.to_str(pretty=True).encode("utf-8"))
    write_json(storage.join(directory, TOKENIZER_CONFIG_FILE), TRANSFORMERS_CONFIG)


def tokenizer_dir(path: str) -> str:
    """A tokenizer directory, given it or a version directory that holds one."""
    inner = storage.join(path, TOKENIZER_DIR)
    return inner if storage.exists(storage.join(inner, TOKENIZER_FILE)) else path


def tokenizer_json(path: str) -> bytes:
    """The tokenizer.json of a version or tokenizer directory, local or on cloud storage."""
    file = storage.join(tokenizer_dir(path), TOKENIZER_FILE)
    if not storage.exists(file):
        raise FileNotFoundError(f"no {TOKENIZER_FILE} under {path}; run the tokenizer stage first")
    return storage.read_bytes(file)


def load_tokenizer(path: str):
    """The tokenizer of a version (or a tokenizer directory) as a PreTrainedTokenizerFast."""
    from transformers import PreTrainedTokenizerFast

    with storage.LocalCopy(tokenizer_dir(path), fetch=(TOKENIZER_FILE, TOKENIZER_CONFIG_FILE)) as directory:
        if not os.path.isfile(os.path.join(directory, TOKENIZER_FILE)):
            raise FileNotFoundError(f"no {TOKENIZER_FILE} under {path}; run the tokenizer stage first")
        return PreTrainedTokenizerFast.from_pretrained(directory)


def load_raw_tokenizer(path: str) -> Tokenizer:
    """The `tokenizers.Tokenizer` alone (fast to load; what binarization uses)."""
    return Tokenizer.from_str(tokenizer_json(path).decode("utf-8"))


def tokenizer_hash(path: str) -> str:
    """sha256 of tokenizer.json: two versions with equal hashes share token ids."""
    return "sha256:" + hashlib.sha256(tokenizer_json(path)).hexdigest()
