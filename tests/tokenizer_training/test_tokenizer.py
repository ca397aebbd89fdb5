"""The whitespace-spanning byte-level BPE (paper §3.4): pieces, special tokens, packaging, sampling."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.config import ConfigError, TokenizerConfig, load_config
from tests.conftest import ROOT, SAMPLE_CONFIG
from tokenizer_training.sample import choose_sample, document_files, iter_sample
from tokenizer_training.tokenizer import (
    EOM,
    EOT,
    MASK_TOKEN_FORMAT,
    PAD,
    SPECIAL_TOKENS,
    new_tokenizer,
    tokenizer_hash,
    train_tokenizer,
)
from tokenizer_training.train_tokenizer import make_tokenizer

CODE = [
    "import numpy as np\nimport pandas as pd\n\n\ndef mean(xs):\n\treturn np.mean(xs)  # average\n",
    "import numpy as np\n\nclass Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "import numpy as np\nfrom os import path\n\nif __name__ == '__main__':\n    print(np.zeros(3))\n",
]

# Loads the version's tokenizer the way users do (a fresh interpreter, transformers'
# loaders), round-trips every document and reports how special tokens encode.
FRESH_PROCESS_CHECK = r"""
import json, sys
import pyarrow.parquet as pq
from transformers import AutoTokenizer, PreTrainedTokenizerFast

version = sys.argv[1]
texts = pq.read_table(version + "/documents", columns=["text"]).column("text").to_pylist()
report = {"documents": len(texts)}
for name, cls in (("AutoTokenizer", AutoTokenizer), ("PreTrainedTokenizerFast", PreTrainedTokenizerFast)):
    tok = cls.from_pretrained(version + "/tokenizer")
    ids = [tok(t)["input_ids"] for t in texts]
    report[name] = {
        "fast": isinstance(tok, PreTrainedTokenizerFast),
        "round_trip": sum(tok.decode(i[1:], clean_up_tokenization_spaces=False) == t for i, t in zip(ids, texts)),
        "round_trip_skip_special": sum(
            tok.decode(i, skip_special_tokens=True, clean_up_tokenization_spaces=False) == t
            for i, t in zip(ids, texts)
        ),
        "first_ids": sorted({i[0] for i in ids}),
        "special": {s: tok(s, add_special_tokens=False)["input_ids"] for s in sys.argv[2:]},
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
    }
print(json.dumps(report))
"""


def test_users_load_it_with_autotokenizer_and_get_the_sample_back_exactly(sample_version):
    version, _ = sample_version()
    specials = [EOT, PAD, EOM, MASK_TOKEN_FORMAT.format(0), MASK_TOKEN_FORMAT.format(255)]
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_CHECK, str(version), *specials],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["documents"] == json.loads((version / "manifest.json").read_text())["documents"] > 0
    for loader in ("AutoTokenizer", "PreTrainedTokenizerFast"):
        r = report[loader]
        assert r["fast"]
        assert r["round_trip"] == r["round_trip_skip_special"] == report["documents"]
        assert r["first_ids"] == [0]  # <|endoftext|> starts every document
        assert r["special"] == {s: [SPECIAL_TOKENS.index(s)] for s in specials}  # each one id
        assert r["pad_token_id"] == 1 and r["eos_token_id"] == 0


def test_pieces_span_spaces_and_tabs_but_break_at_newlines():
    pre = new_tokenizer().pre_tokenizer
    pieces = [p for p, _ in pre.pre_tokenize_str("import numpy as np\n\n\tx = 1  # c\ny")]
    # Byte-level alphabet: Ġ is a space, ĉ a tab, Ċ a newline.
    assert pieces == ["importĠnumpyĠasĠnp", "ĊĊ", "ĉxĠ=Ġ1ĠĠ#Ġc", "Ċ", "y"]


def test_frequent_idioms_become_single_tokens_and_no_token_crosses_a_line():
    tok = train_tokenizer(CODE * 20, vocab_size=400, min_frequency=2)
    assert tok.encode("import numpy as np").tokens == [EOT, "importĠnumpyĠasĠnp"]
    for token in tok.get_vocab():
        if "Ċ" in token:
            assert set(token) == {"Ċ"}, token
    assert tok.get_vocab_size() <= 400 + len(SPECIAL_TOKENS)
    assert [tok.token_to_id(s) for s in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))


AWKWARD = " \t\n\r\x00abcXYZ_(){}#'\"é→中😀\u200b"  # whitespace, NUL, multi-byte and zero-width characters
ROUND_TRIP_TOKENIZER = train_tokenizer(CODE * 10, vocab_size=350, min_frequency=2)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(AWKWARD)) | st.characters(codec="utf-8"), max_size=200))
def test_any_text_round_trips_exactly(text):
    ids = ROUND_TRIP_TOKENIZER.encode(text).ids
    assert ids[0] == 0
    assert ROUND_TRIP_TOKENIZER.decode(ids[1:], skip_special_tokens=False) == text


def test_training_depends_on_the_texts_not_their_order():
    a = train_tokenizer(CODE * 5, vocab_size=300, min_frequency=2).to_str()
    b = train_tokenizer(list(reversed(CODE * 5)), vocab_size=300, min_frequency=2).to_str()
    assert a == b


def test_sample_is_deterministic_nested_and_bounded(sample_version):
    version, _ = sample_version()
    paths = document_files(str(version))
    unbounded = 1 << 40
    five = choose_sample(paths, seed=7, max_documents=5, fraction=1.0, max_bytes=unbounded)
    assert len(five) == 5 and five == choose_sample(paths, seed=7, max_documents=5, fraction=1.0, max_bytes=unbounded)
    assert choose_sample(paths, seed=7, max_documents=3, fraction=1.0, max_bytes=unbounded) < five
    assert choose_sample(paths, seed=8, max_documents=5, fraction=1.0, max_bytes=unbounded) != five
    half = choose_sample(paths, seed=7, max_documents=1000, fraction=0.5, max_bytes=unbounded)
    total = len(pq.read_table(os.path.join(version, "documents")))
    assert 0 < len(half) < total
    texts = list(iter_sample(paths, five))
    assert len(texts) == 5 and all(texts)
    sizes = sorted(len(t.encode("utf-8")) for t in texts)
    capped = choose_sample(paths, seed=7, max_documents=5, fraction=1.0, max_bytes=sum(sizes) - 1)
    assert capped < five  # the byte cap cuts the run short, keeping the lowest keys
    assert sum(len(t.encode("utf-8")) for t in iter_sample(paths, capped)) <= sum(sizes) - 1


def test_reuse_from_copies_an_earlier_tokenizer(sample_version, tmp_path):
    version, _ = sample_version()
    entry = make_tokenizer(str(version), str(tmp_path), TokenizerConfig(), 0, reuse_from=str(version))
    assert entry["hash"] == tokenizer_hash(str(version)) == tokenizer_hash(str(tmp_path))
    assert entry["reused_from"] == {"path": str(version), "hash": tokenizer_hash(str(version))}
    assert sorted(os.listdir(tmp_path / "tokenizer")) == ["tokenizer.json", "tokenizer_config.json"]


def test_reuse_from_a_folder_without_a_tokenizer_names_the_key(sample_version, tmp_path):
    version, _ = sample_version()
    with pytest.raises(ConfigError, match="tokenizer.reuse_from"):
        make_tokenizer(str(version), str(tmp_path), TokenizerConfig(), 0, reuse_from=str(tmp_path))


def test_trained_entry_records_the_sample(sample_version, tmp_path):
    version, _ = sample_version()
    entry = make_tokenizer(str(version), str(tmp_path), TokenizerConfig(vocab_size=300, sample_documents=4), 0, None)
    assert entry["sample"]["documents"] == 4
    assert entry["vocab_size"] <= 300 + len(SPECIAL_TOKENS)
    assert entry["special_tokens"] == {EOT: 0, PAD: 1, EOM: 2, MASK_TOKEN_FORMAT.format(0): 3}


@pytest.mark.parametrize(
    "section, key",
    [
        ({"tokenizer": {"vocab_size": 100}}, "tokenizer.vocab_size"),
        ({"tokenizer": {"sample_fraction": 0}}, "tokenizer.sample_fraction"),
        ({"tokenizer": {"sample_documents": 0}}, "tokenizer.sample_documents"),
        ({"tokenizer": {"sample_bytes": 0}}, "tokenizer.sample_bytes"),
        ({"binarize": {"num_shards": 0}}, "binarize.num_shards"),
        ({"binarize": {"valid_fraction": 1.0}}, "binarize.valid_fraction"),
        ({"binarize": {"shards": 2}}, "unknown key"),
    ],
)
def test_bad_settings_fail_naming_the_key(section, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(SAMPLE_CONFIG, overrides=section)
