"""The .bin/.idx writer and reader against Megatron-LM's own reader."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

from tokenizer_training.indexed_dataset import (
    IndexedDataset,
    IndexedDatasetBuilder,
    bin_path,
    idx_path,
    shard_prefixes,
    token_dtype,
)

DOCUMENTS = [[0, 5, 6, 7], [0], [0, 65000, 1, 2, 3, 4, 5], list(range(3000)), []]


def megatron_dataset(prefix: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.indexed_dataset import IndexedDataset as MegatronIndexedDataset

    return MegatronIndexedDataset(prefix)


def write_shard(prefix: str, documents, dtype) -> dict:
    builder = IndexedDatasetBuilder(bin_path(prefix), dtype)
    for doc in documents:
        builder.add_document(doc)
    return builder.finalize(idx_path(prefix))


@pytest.mark.slow  # importing Megatron takes about 7 CPU s; the fast loop checks the header's layout itself
@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_megatron_reads_back_what_we_write(tmp_path, dtype):
    prefix = str(tmp_path / "train-00000")
    written = write_shard(prefix, DOCUMENTS, dtype)
    ours, theirs = IndexedDataset(prefix), megatron_dataset(prefix)

    assert len(ours) == len(theirs) == len(DOCUMENTS) == written["sequences"]
    assert ours.dtype is dtype and theirs.index.dtype is dtype
    for i, doc in enumerate(DOCUMENTS):
        assert ours[i].tolist() == theirs[i].tolist() == doc
        assert ours[i].dtype == theirs[i].dtype == dtype
    assert ours.sizes.dtype == np.int32 and ours.sizes.tolist() == [len(d) for d in DOCUMENTS]
    assert ours.sizes.tolist() == theirs.sequence_lengths.tolist()
    assert ours.document_indices.tolist() == theirs.document_indices.tolist() == list(range(len(DOCUMENTS) + 1))
    assert written["tokens"] == ours.num_tokens() == sum(map(len, DOCUMENTS))


def test_index_layout_is_the_mmidx_header(tmp_path):
    prefix = str(tmp_path / "s")
    write_shard(prefix, [[1, 2, 3], [4]], np.uint16)
    data = open(idx_path(prefix), "rb").read()
    assert data[:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack("<QBQQ", data[9:34]) == (1, 8, 2, 3)  # version, uint16 code, sequences, documents + 1
    assert np.frombuffer(data, np.int32, 2, 34).tolist() == [3, 1]  # sizes
    assert np.frombuffer(data, np.int64, 2, 42).tolist() == [0, 6]  # byte pointers
    assert np.frombuffer(data, np.int64, 3, 58).tolist() == [0, 1, 2]  # document indices
    assert len(data) == 82
    assert open(bin_path(prefix), "rb").read() == np.array([1, 2, 3, 4], np.uint16).tobytes()


def test_reader_memory_maps_instead_of_loading(tmp_path):
    prefix = str(tmp_path / "s")
    write_shard(prefix, [[7] * 10, [8] * 5], np.int32)
    ds = IndexedDataset(prefix)
    assert isinstance(ds._data, np.memmap) and isinstance(ds._index, np.memmap)
    assert ds[-1].tolist() == [8] * 5
    with pytest.raises(IndexError):
        ds[2]


def test_finalize_reports_checksums_of_the_files(tmp_path):
    import hashlib

    prefix = str(tmp_path / "s")
    written = write_shard(prefix, [[1, 2], [3]], np.uint16)
    for kind, path in (("bin", bin_path(prefix)), ("idx", idx_path(prefix))):
        data = open(path, "rb").read()
        assert written[kind] == (hashlib.sha256(data).hexdigest(), len(data), hashlib.md5(data).hexdigest())


def test_ids_that_do_not_fit_the_dtype_are_refused(tmp_path):
    builder = IndexedDatasetBuilder(str(tmp_path / "s.bin"), np.uint16)
    with pytest.raises(ValueError, match="out of range for uint16"):
        builder.add_document([1, 70000])


def test_bad_magic_is_named(tmp_path):
    prefix = str(tmp_path / "s")
    write_shard(prefix, [[1]], np.uint16)
    data = bytearray(open(idx_path(prefix), "rb").read())
    data[0:1] = b"X"
    open(idx_path(prefix), "wb").write(bytes(data))
    with pytest.raises(ValueError, match="bad magic"):
        IndexedDataset(prefix)


def test_uint16_only_while_the_vocabulary_fits():
    assert token_dtype(50_259) is np.uint16
    assert token_dtype(65_500) is np.int32


def test_shard_prefixes_lists_one_split_sorted(tmp_path):
    (tmp_path / "shards").mkdir()
    for name in ("train-00002", "train-00000", "valid-00000", "train-00001"):
        write_shard(str(tmp_path / "shards" / name), [[1]], np.uint16)
    (tmp_path / "shards" / "train-notes.idx").write_text("")
    assert shard_prefixes(str(tmp_path), "train") == [str(tmp_path / "shards" / f"train-0000{i}") for i in range(3)]
    assert shard_prefixes(str(tmp_path), "valid") == [str(tmp_path / "shards" / "valid-00000")]
