"""The tokenizer and binarize stages on the bundled sample, read back with Megatron's reader and ours."""

from __future__ import annotations

import hashlib
import json
import shutil

import pyarrow.parquet as pq
import pytest

from infra.version import write_manifest
from infra.writers import shard_of, write_parquet
from pipeline.options import make_pipeline_options
from pipeline.run import run_stages
from schemas import arrow
from schemas.config import BinarizeConfig, load_config
from schemas.records import Document
from tests.conftest import DIRECT_MODES, SAMPLE_CONFIG
from tests.tokenizer_training.test_indexed_dataset import megatron_dataset
from tokenizer_training.binarize import binarize_version, split_of
from tokenizer_training.indexed_dataset import IndexedDataset, shard_prefixes
from tokenizer_training.tokenizer import EOM, MASK_TOKEN_FORMAT, load_raw_tokenizer, save_tokenizer, train_tokenizer


def expected_layout(documents: list[dict], seed: int, config: BinarizeConfig) -> dict:
    """prefix name → document ids in order, worked out from the split and shard rules."""
    layout: dict = {}
    shards = {"train": config.num_shards, "valid": config.valid_shards}
    for doc in sorted(documents, key=lambda d: d["id"]):
        split = split_of(seed, doc["id"], config.valid_fraction)
        layout.setdefault(f"{split}-{shard_of(doc['id'], shards[split]):05d}", []).append(doc["id"])
    return layout


@pytest.mark.parametrize("mode", sorted(DIRECT_MODES))
def test_sample_run_writes_shards_that_megatron_and_we_read_alike(sample_version, mode):
    version, proc = sample_version(mode)
    config = load_config(SAMPLE_CONFIG)
    manifest = json.loads((version / "manifest.json").read_text())
    documents = pq.read_table(version / "documents", columns=["id", "text"]).to_pylist()
    text_of = {d["id"]: d["text"] for d in documents}
    tokenizer = load_raw_tokenizer(str(version))
    tokenizer.encode_special_tokens = True  # as binarize encodes: special-token text is text

    assert manifest["stages"] == ["corpus", "tokenizer", "binarize"]
    counts = manifest["counts"]["binarize"]
    assert counts["in"] == counts["kept"] == manifest["documents"] == len(documents)
    assert counts["rejected"] == {}
    assert manifest["shards"]["tokenizer_hash"] == manifest["tokenizer"]["hash"]
    assert manifest["shards"]["dtype"] == "uint16"
    assert "binarize" in proc.stdout  # in the closing summary table

    layout = expected_layout(documents, config.seed, config.binarize)
    found = {}
    for split in ("train", "valid"):
        entry = manifest["shards"]["splits"][split]
        prefixes = shard_prefixes(str(version), split)
        assert [s["prefix"] for s in entry["shards"]] == [f"shards/{p.rsplit('/', 1)[1]}" for p in prefixes]
        assert entry["documents"] == sum(len(IndexedDataset(p)) for p in prefixes)
        tokens = sum(IndexedDataset(p).num_tokens() for p in prefixes)
        assert entry["tokens"] == counts["stats"].get(f"{split}_tokens", 0) == tokens
        for shard, prefix in zip(entry["shards"], prefixes):
            ours, theirs = IndexedDataset(prefix), megatron_dataset(prefix)
            name = prefix.rsplit("/", 1)[1]
            found[name] = layout[name]
            assert len(ours) == len(theirs) == shard["documents"] == len(layout[name])
            assert ours.num_tokens() == shard["tokens"]
            for i, doc_id in enumerate(layout[name]):
                assert ours[i].tolist() == theirs[i].tolist()
                assert ours[i][0] == 0  # <|endoftext|>
                assert ours[i].tolist() == tokenizer.encode(text_of[doc_id]).ids  # tiktoken's ids are tokenizers'
                assert tokenizer.decode(ours[i][1:].tolist()) == text_of[doc_id]
            for kind in ("bin", "idx"):
                data = open(f"{prefix}.{kind}", "rb").read()
                assert shard[kind] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                assert manifest["files"][f"shards/{name}.{kind}"]["sha256"] == shard[kind]["sha256"]
    assert found == layout  # every non-empty shard written, each holding exactly its documents
    assert "train-00000" in layout and entry["documents"] == counts["stats"].get("valid_documents", 0)


def make_version(root, documents: list[Document]) -> str:
    """A version folder with documents/ (listed in its manifest) and a tokenizer trained on them."""
    version = root / "v0001"
    (version / "documents").mkdir(parents=True)
    rows = [d.to_row() for d in sorted(documents, key=lambda d: d.id)]
    sha, size = write_parquet(str(version / "documents" / "part-00000-of-00001.parquet"), arrow.DOCUMENT, rows)
    files = {"documents/part-00000-of-00001.parquet": {"sha256": sha, "bytes": size, "rows": len(rows)}}
    write_manifest(str(version), {"name": "t", "version": "v0001", "files": files})
    save_tokenizer(train_tokenizer([d.text for d in documents if d.text], 400, 2), str(version / "tokenizer"))
    return str(version)


@pytest.mark.slow
def test_empty_documents_are_rejected_and_long_ones_kept_whole(tmp_path):
    long_text = "".join(f"    value_{i} = compute({i}, scale=2.5)  # step {i}\n" for i in range(3000))
    literal = f"text = '{EOM} and {MASK_TOKEN_FORMAT.format(3)} are plain text here'\n"
    documents = [
        Document(id="a-long", kind="code", text=long_text, source="local", repo="r", path="long.py"),
        Document(id="b-empty", kind="code", text="", source="local", repo="r", path="empty.py"),
        Document(id="c-literal", kind="code", text=literal, source="local", repo="r", path="lit.py"),
        Document(id="d-empty", kind="code", text="", source="local", repo="r", path="empty2.py"),
    ]
    version = make_version(tmp_path, documents)
    work = tmp_path / "work"
    work.mkdir()
    config = BinarizeConfig(num_shards=1, valid_fraction=0.0)
    options = make_pipeline_options(DIRECT_MODES["in_memory"])

    entries = binarize_version(version, str(work), config, 0, options)

    counts = entries["counts"]["binarize"]
    assert counts["in"] == 4 and counts["kept"] == 2 and counts["rejected"] == {"empty": 2}
    rejected = pq.read_table(work / "shards" / "rejected").to_pylist()
    assert sorted((r["id"], r["stage"], r["reason"], r["path"]) for r in rejected) == [
        ("b-empty", "binarize", "empty", "empty.py"),
        ("d-empty", "binarize", "empty", "empty2.py"),
    ]
    tokenizer = load_raw_tokenizer(version)
    shard = IndexedDataset(str(work / "shards" / "train-00000"))
    assert len(shard) == 2 and shard_prefixes(str(work), "valid") == []
    long_ids = tokenizer.encode(long_text).ids
    assert len(long_ids) > 2048 and shard[0].tolist() == long_ids  # whole, not cut to a context
    literal_ids = shard[1].tolist()
    assert tokenizer.token_to_id(EOM) not in literal_ids[1:]  # the text "<eom>" is not the sentinel
    assert tokenizer.token_to_id(MASK_TOKEN_FORMAT.format(3)) not in literal_ids
    assert tokenizer.decode(literal_ids[1:]) == literal
    assert entries["shards"]["splits"]["train"]["tokens"] == len(long_ids) + len(literal_ids)


def test_binarize_alone_on_an_existing_version_gives_the_same_bytes(sample_version, tmp_path):
    version, _ = sample_version()
    copy = tmp_path / "sample" / "v0001"
    shutil.copytree(version, copy)
    before = json.loads((copy / "manifest.json").read_text())
    shutil.rmtree(copy / "shards")

    run_stages(load_config(SAMPLE_CONFIG), str(tmp_path), ["binarize"], DIRECT_MODES["in_memory"], "v0001")

    after = json.loads((copy / "manifest.json").read_text())
    assert after["shards"] == before["shards"] and after["files"] == before["files"]
    assert after["counts"] == before["counts"]
    for rel in before["files"]:
        assert (copy / rel).read_bytes() == (version / rel).read_bytes(), rel
