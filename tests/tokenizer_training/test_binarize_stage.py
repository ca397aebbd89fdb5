"""Binarize's stage as a composite on a few literal documents: its StageOutputs in a TestPipeline."""

from __future__ import annotations

import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas import stage_names
from schemas.config import BinarizeConfig
from schemas.records import Document
from tests.conftest import local_pipeline
from tests.tokenizer_training.test_binarize import make_version
from tokenizer_training.binarize import BinarizeDocuments, row_groups_of
from tokenizer_training.indexed_dataset import IndexedDataset, token_dtype
from tokenizer_training.tokenizer import TOKENIZER_DIR, TOKENIZER_FILE, load_raw_tokenizer

TEXTS = {
    "a": "def add(a, b):\n    return a + b\n",
    "b": "",
    "c": "class Point:\n    def __init__(self, x):\n        self.x = x\n",
}


@pytest.mark.slow  # a Beam pipeline
def test_the_stage_tokenizes_kept_documents_into_a_shard_and_rejects_empty_ones(tmp_path):
    documents = [Document(id=i, kind="code", text=t, source="local", repo="o/r", path=f"{i}.py") for i, t in TEXTS.items()]
    version = make_version(tmp_path, documents)
    tokenizer = load_raw_tokenizer(version)
    dtype = np.dtype(token_dtype(tokenizer.get_vocab_size(with_added_tokens=True))).name
    ids = {i: tokenizer.encode(t).ids for i, t in TEXTS.items() if t}
    out_dir = str(tmp_path / "out")
    config = BinarizeConfig(num_shards=1, valid_fraction=0.0)
    tokenizer_path = os.path.join(version, TOKENIZER_DIR, TOKENIZER_FILE)
    with local_pipeline() as p:
        units = p | beam.Create(row_groups_of(version))
        out = units | BinarizeDocuments(out_dir, tokenizer_path, 0, config, dtype)
        kept = out.kept | "Kept" >> beam.MapTuple(lambda shard, doc: (shard, doc[0], doc[1].tolist()))
        assert_that(kept, equal_to([(("train", 0), i, tokens) for i, tokens in ids.items()]), label="Kept")
        rejected = out.rejected | "AllRejected" >> beam.Flatten() | "Reasons" >> beam.Map(lambda r: (r.id, r.stage, r.reason))
        assert_that(rejected, equal_to([("b", stage_names.BINARIZE, "empty")]), label="Rejected")
        files = out.files | "AllFiles" >> beam.Flatten() | "Files" >> beam.Map(lambda f: (f["path"], f["rows"], f["tokens"]))
        tokens = sum(len(t) for t in ids.values())
        assert_that(files, equal_to([("shards/train-00000.bin", 2, tokens), ("shards/train-00000.idx", 2, tokens)]))
        tally = [
            ((stage_names.BINARIZE, "in", ""), 3),
            ((stage_names.BINARIZE, "kept", ""), 2),
            ((stage_names.BINARIZE, "rejected", "empty"), 1),
            ((stage_names.BINARIZE, "stat", "train_documents"), 2),
            ((stage_names.BINARIZE, "stat", "train_tokens"), tokens),
        ]
        assert_that(out.tally | beam.CombinePerKey(sum), equal_to(tally), label="Tally")
    shard = IndexedDataset(os.path.join(out_dir, "shards", "train-00000"))
    assert [shard[i].tolist() for i in range(len(shard))] == list(ids.values())  # sorted by id: a, c
