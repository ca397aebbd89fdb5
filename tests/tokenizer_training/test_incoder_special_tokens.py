"""Our tokenizer's special tokens against facebook/incoder's published configuration.

The values below are quoted from the files facebook/incoder-1B and facebook/incoder-6B
publish on the Hugging Face Hub and from the example code of InCoder's repository
(github.com/dpfried/incoder); docs/tokenizer.md lists what they do not pin down.
"""

from __future__ import annotations

import json

import pytest

from tokenizer_training.tokenizer import EOM, EOT, MASK_TOKEN_FORMAT, PAD, save_tokenizer, train_tokenizer

# facebook/incoder-1B/special_tokens_map.json
INCODER_SPECIAL_TOKENS_MAP = {"bos_token": "<|endoftext|>"}
# facebook/incoder-1B/tokenizer_config.json (less name_or_path and special_tokens_map_file)
INCODER_TOKENIZER_CONFIG = {
    "bos_token": "<|endoftext|>",
    "model_max_length": 2048,
    "tokenizer_class": "PreTrainedTokenizerFast",
}
# facebook/incoder-1B/generation_config.json; facebook/incoder-6B/config.json has the same ids
INCODER_GENERATION_CONFIG = {"bos_token_id": 0, "decoder_start_token_id": 2, "eos_token_id": 2, "pad_token_id": 1}
# dpfried/incoder example_usage.py and example_batched_usage.py:
#   BOS = "<|endoftext|>"   # signals the start of a document
#   EOM = "<|endofmask|>"   # signals the end of a generated infill
#   def make_sentinel(i): return f"<|mask:{i}|>"
#   PAD = "<pad>"; self.tokenizer.pad_token = PAD; assert self.tokenizer.pad_token_id == 1
INCODER_EXAMPLE_STRINGS = {"BOS": "<|endoftext|>", "EOM": "<|endofmask|>", "PAD": "<pad>"}
INCODER_SENTINEL = "<|mask:{}|>"


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tokenizer")
    save_tokenizer(train_tokenizer(["def f(x):\n    return x\n"] * 20, vocab_size=300, min_frequency=2), str(directory))
    return directory


@pytest.fixture(scope="module")
def tokenizer(directory):
    from transformers import AutoTokenizer  # here, not at collection: its import takes a second

    return AutoTokenizer.from_pretrained(str(directory))


def test_token_strings_are_incoders():
    assert EOT == INCODER_EXAMPLE_STRINGS["BOS"] == INCODER_SPECIAL_TOKENS_MAP["bos_token"]
    assert EOM == INCODER_EXAMPLE_STRINGS["EOM"]
    assert PAD == INCODER_EXAMPLE_STRINGS["PAD"]
    assert [MASK_TOKEN_FORMAT.format(k) for k in (0, 1, 255)] == [INCODER_SENTINEL.format(k) for k in (0, 1, 255)]


def test_loaded_tokenizer_has_incoders_bos_and_pad_ids_and_context(tokenizer):
    assert tokenizer.bos_token == INCODER_TOKENIZER_CONFIG["bos_token"]
    assert tokenizer.bos_token_id == INCODER_GENERATION_CONFIG["bos_token_id"] == 0
    tokenizer.pad_token = INCODER_EXAMPLE_STRINGS["PAD"]  # as example_batched_usage.py does
    assert tokenizer.pad_token_id == INCODER_GENERATION_CONFIG["pad_token_id"] == 1
    assert tokenizer.model_max_length == INCODER_TOKENIZER_CONFIG["model_max_length"]


def test_tokenizer_config_has_incoders_entries(directory):
    config = json.loads((directory / "tokenizer_config.json").read_text())
    assert {k: config[k] for k in INCODER_TOKENIZER_CONFIG} == INCODER_TOKENIZER_CONFIG


def test_encoding_prepends_endoftext_and_sentinels_are_single_tokens(tokenizer):
    # The model card: "encoding prepends the <|endoftext|> token, as this marks the start of a document".
    ids = tokenizer("def f(x):\n")["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    for token in ("<|endofmask|>", "<|mask:0|>", "<|mask:1|>", "<|mask:255|>"):
        encoded = tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(encoded) == 1 and tokenizer.convert_ids_to_tokens(encoded) == [token]
    # An infill prompt in InCoder's example format splits into the same sentinel ids.
    prompt = "def f(x):\n<|mask:0|>\n<|mask:1|><|mask:0|>"
    ids = tokenizer(prompt)["input_ids"]
    assert ids.count(tokenizer.convert_tokens_to_ids("<|mask:0|>")) == 2
    completion = tokenizer.decode(ids + [tokenizer.convert_tokens_to_ids("<|endofmask|>")], clean_up_tokenization_spaces=False)
    assert completion.endswith("<|endofmask|>")  # InCoder's stop string ends our infills too


def test_eos_differs_where_incoders_configs_name_no_string(tokenizer):
    """InCoder's eos_token_id 2 has no string in its configs; ours is <|endoftext|> (docs/tokenizer.md)."""
    assert tokenizer.eos_token == EOT
    assert tokenizer.convert_tokens_to_ids(EOM) == 2
