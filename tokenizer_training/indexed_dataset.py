"""Token shards in the Megatron-LM / fairseq `MMapIndexedDataset` format.

A shard is a path prefix with two files. `<prefix>.bin` holds the token ids of every
sequence back to back; `<prefix>.idx` says where each one starts. The layout follows
megatron/core/datasets/indexed_dataset.py (`_IndexWriter` / `_IndexReader`):

    .idx   offset  field
           0       magic            9 bytes  b"MMIDIDX\\x00\\x00"
           9       version          uint64   1
           17      dtype code       uint8    DTYPE_CODES (uint16 = 8, int32 = 4, ...)
           18      sequence count   uint64   S
           26      document count   uint64   D + 1
           34      sequence sizes   int32[S]     tokens per sequence
                   pointers         int64[S]     byte offset of each sequence in .bin
                   document indices int64[D + 1] sequence index where each document starts,
                                                 then S (here one sequence per document)
    .bin           token ids, dtype as coded, C order, no header

Both files are memory-mapped when read, so a reader costs the index, not the data.
"""

from __future__ import annotations

import array
import glob
import os
import struct

import numpy as np

from infra import storage
from infra.writers import HashingFile

INDEX_HEADER = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
HEADER_BYTES = len(INDEX_HEADER) + 8 + 1 + 8 + 8  # magic, version, dtype code, two counts = 34

# Megatron's `DType` enum: numpy dtype <-> on-disk code.
DTYPE_CODES = {
    np.uint8: 1,
    np.int8: 2,
    np.int16: 3,
    np.int32: 4,
    np.int64: 5,
    np.float64: 6,
    np.float32: 7,
    np.uint16: 8,
}
DTYPE_OF_CODE = {code: dtype for dtype, code in DTYPE_CODES.items()}

UINT16_VOCAB_LIMIT = 65500  # Megatron's `optimal_dtype` threshold


def token_dtype(vocab_size: int) -> type:
    """uint16 when every token id fits (as Megatron chooses), else int32."""
    return np.uint16 if vocab_size < UINT16_VOCAB_LIMIT else np.int32


def bin_path(prefix: str) -> str:
    return prefix + ".bin"


def idx_path(prefix: str) -> str:
    return prefix + ".idx"


def shard_prefixes(version_dir: str, split: str) -> list[str]:
    """Sorted path prefixes of a split's shards (`shards/<split>-NNNNN`) in a version."""
    paths = glob.glob(os.path.join(glob.escape(version_dir), "shards", f"{split}-[0-9][0-9][0-9][0-9][0-9].idx"))
    return sorted(p[: -len(".idx")] for p in paths)


class IndexedDataset:
    """Read-only view of one shard: `ds[i]` is the token ids of sequence i."""

    def __init__(self, path_prefix: str):
        self.path_prefix = path_prefix
        index = idx_path(path_prefix)
        with open(index, "rb") as f:
            header = f.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES or header[:9] != INDEX_HEADER:
            raise ValueError(f"{index}: not an MMIDIDX index (bad magic)")
        version, code, sequences, documents = struct.unpack("<QBQQ", header[9:])
        if version != INDEX_VERSION:
            raise ValueError(f"{index}: index version {version}, expected {INDEX_VERSION}")
        if code not in DTYPE_OF_CODE:
            raise ValueError(f"{index}: unknown dtype code {code}")
        self.dtype = DTYPE_OF_CODE[code]
        self._index = np.memmap(index, mode="r", order="C")
        offset = HEADER_BYTES
        self.sizes = np.frombuffer(self._index, dtype=np.int32, count=sequences, offset=offset)
        offset += self.sizes.nbytes
        self.pointers = np.frombuffer(self._index, dtype=np.int64, count=sequences, offset=offset)
        offset += self.pointers.nbytes
        self.document_indices = np.frombuffer(self._index, dtype=np.int64, count=documents, offset=offset)
        if documents == 0 or self.document_indices[-1] != sequences:
            raise ValueError(f"{index}: document indices do not end at the sequence count {sequences}")
        data = bin_path(path_prefix)
        # An empty file cannot be mapped; a shard without tokens reads as an empty array.
        if os.path.getsize(data):
            self._data = np.memmap(data, dtype=self.dtype, mode="r", order="C")
        else:
            self._data = np.empty(0, dtype=self.dtype)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for {len(self)} sequences in {self.path_prefix}")
        start = int(self.pointers[i]) // np.dtype(self.dtype).itemsize
        return self._data[start : start + int(self.sizes[i])]

    def num_tokens(self) -> int:
        return int(self.sizes.sum(dtype=np.int64))


class IndexedDatasetBuilder:
    """Writes one shard: `add_document` per document, then `finalize(idx_path)`.

    The .bin is streamed as documents arrive; only the sequence sizes stay in memory.
    Paths go through Beam's FileSystems, so shards can be written to cloud storage.
    Both files are hashed as written: `finalize` returns their sha256, sizes and md5.
    """

    def __init__(self, bin_path: str, dtype: type = np.int32):
        if dtype not in DTYPE_CODES:
            raise ValueError(f"unsupported token dtype {dtype}; use one of {sorted(d.__name__ for d in DTYPE_CODES)}")
        self.bin_path = bin_path
        self.dtype = dtype
        self.sizes = array.array("i")
        self.limit = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else None
        self._bin = HashingFile(storage.create_file(bin_path))

    def add_document(self, tokens) -> None:
        tokens = np.asarray(tokens)
        if tokens.size and self.limit is not None and (tokens.max() > self.limit or tokens.min() < 0):
            raise ValueError(f"token ids out of range for {np.dtype(self.dtype).name} in {self.bin_path}")
        self._bin.write(tokens.astype(self.dtype, copy=False).tobytes(order="C"))
        self.sizes.append(len(tokens))

    def finalize(self, idx_path: str) -> dict:
        """Close the .bin, write the .idx; return {"bin"|"idx": (sha256, bytes, md5)} and the token count."""
        self._bin.close()
        sizes = np.frombuffer(self.sizes, dtype=np.int32) if self.sizes else np.zeros(0, dtype=np.int32)
        itemsize = np.dtype(self.dtype).itemsize
        pointers = np.zeros(len(sizes), dtype=np.int64)
        np.cumsum(sizes[:-1], dtype=np.int64, out=pointers[1:])
        pointers *= itemsize
        document_indices = np.arange(len(sizes) + 1, dtype=np.int64)  # one sequence per document
        out = HashingFile(storage.create_file(idx_path))
        out.write(INDEX_HEADER)
        out.write(struct.pack("<QBQQ", INDEX_VERSION, DTYPE_CODES[self.dtype], len(sizes), len(document_indices)))
        out.write(sizes.tobytes(order="C"))
        out.write(pointers.tobytes(order="C"))
        out.write(document_indices.tobytes(order="C"))
        out.close()
        return {
            "bin": (self._bin.sha256.hexdigest(), self._bin.size, self._bin.md5.hexdigest()),
            "idx": (out.sha256.hexdigest(), out.size, out.md5.hexdigest()),
            "tokens": int(sizes.sum(dtype=np.int64)),
            "sequences": len(sizes),
        }
