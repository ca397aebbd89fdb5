"""Training batches from a version's token shards: chunk, causal-mask, pack.

Documents are read memory-mapped from `shards/<split>-NNNNN.{bin,idx}` and never
loaded whole. Each epoch visits them in a seeded order; each document is cut into
chunks that fit the context with room for their spans, and each chunk is masked
with a generator seeded by (seed, epoch, shard, document, chunk), so a chunk's
masking does not depend on where or when it is read. Masked chunks are packed
back to back into rows of `context_length` tokens (fairseq's block packing; a
chunk that does not fit starts the next row) and the rest of a row is padding.

Where the stream stands is a `Cursor` of three integers: a checkpoint stores it,
and a resumed run rebuilds the same batches from it.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from schemas.records import record_rng
from tokenizer_training.indexed_dataset import IndexedDataset, shard_prefixes
from trainer.masking import SpecialIds, chunk_bounds, mask_chunk

IGNORE_INDEX = -100  # the label of a position that is not a training target


@dataclasses.dataclass
class Cursor:
    """The next chunk to read: chunk `chunk` of the `position`-th document of epoch `epoch`."""

    epoch: int = 0
    position: int = 0
    chunk: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ShardDocuments:
    """All documents of one split of a version, memory-mapped, addressed by one index."""

    def __init__(self, version_dir: str, split: str):
        prefixes = shard_prefixes(version_dir, split)
        self.shards = [IndexedDataset(p) for p in prefixes]
        self.names = [os.path.basename(p) for p in prefixes]
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def get(self, index: int) -> tuple[str, int, np.ndarray]:
        """(shard name, index in the shard, token ids) of document `index`."""
        shard = int(np.searchsorted(self.starts, index, side="right")) - 1
        local = index - int(self.starts[shard])
        return self.names[shard], local, self.shards[shard][local]

    def num_tokens(self) -> int:
        return sum(s.num_tokens() for s in self.shards)


class MaskedSequences:
    """Masked chunks in training order, starting from a cursor."""

    def __init__(self, docs: ShardDocuments, ids: SpecialIds, context_length: int, seed: int, shuffle: bool, cursor: Cursor):
        if not len(docs):
            raise ValueError("the split has no documents")
        self.docs = docs
        self.ids = ids
        self.context_length = context_length
        self.seed = seed
        self.shuffle = shuffle
        self.cursor = dataclasses.replace(cursor)
        self._order_epoch = None
        self._order = None
        self._current = None  # (cursor tuple, masked ids, targets) of the chunk at the cursor
        self._document_at = None  # ((epoch, position), name, local, tokens, bounds) of the last document read

    def _document_order(self, epoch: int) -> np.ndarray:
        if self._order_epoch != epoch:
            n = len(self.docs)
            rng = np.random.default_rng(record_rng(self.seed, "order", epoch).getrandbits(64))
            self._order = rng.permutation(n) if self.shuffle else np.arange(n)
            self._order_epoch = epoch
        return self._order

    def _document(self, epoch: int, position: int) -> tuple[str, int, np.ndarray, list[tuple[int, int]]]:
        """(shard name, index in the shard, tokens, chunk bounds) of the document at a place in an epoch.

        The last one is kept: a document's chunks are read one after another, and the
        step past its last chunk reads it once more (most documents have one chunk).
        """
        if self._document_at is None or self._document_at[0] != (epoch, position):
            name, local, tokens = self.docs.get(int(self._document_order(epoch)[position]))
            self._document_at = ((epoch, position), name, local, tokens, chunk_bounds(len(tokens), self.context_length))
        return self._document_at[1:]

    def _locate(self) -> tuple[str, int, np.ndarray, list[tuple[int, int]]]:
        """Move the cursor past documents with no (more) chunks; return the document at it."""
        c = self.cursor
        while True:
            if c.position >= len(self.docs):
                c.epoch, c.position, c.chunk = c.epoch + 1, 0, 0
            name, local, tokens, bounds = self._document(c.epoch, c.position)
            if c.chunk < len(bounds):
                return name, local, tokens, bounds
            c.position, c.chunk = c.position + 1, 0

    def peek(self) -> tuple[np.ndarray, np.ndarray]:
        """(masked ids, target flags) of the chunk at the cursor."""
        c = self.cursor
        if self._current is None or self._current[0] != (c.epoch, c.position, c.chunk):
            name, local, tokens, bounds = self._locate()
            start, end = bounds[c.chunk]
            rng = record_rng(self.seed, "mask", c.epoch, name, local, c.chunk)
            masked = mask_chunk(tokens[start:end], rng, self.ids, self.context_length)
            self._current = ((c.epoch, c.position, c.chunk), *masked)
        return self._current[1], self._current[2]

    def advance(self) -> None:
        """Move past the chunk `peek` returned."""
        self.peek()
        self.cursor.chunk += 1


def next_batch(seqs: MaskedSequences, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(input ids, labels), each (batch_size, context_length); labels are IGNORE_INDEX off target.

    labels[b, t] is the token at t when it is a target (not a sentinel, not padding);
    the model's prediction at t - 1 is scored against it.
    """
    context = seqs.context_length
    inputs = np.full((batch_size, context), seqs.ids.pad, dtype=np.int64)
    labels = np.full((batch_size, context), IGNORE_INDEX, dtype=np.int64)
    for row in range(batch_size):
        used = 0
        while True:
            masked, targets = seqs.peek()
            if used + len(masked) > context:
                break  # every masked chunk fits an empty row, so a row never stays empty
            inputs[row, used : used + len(masked)] = masked
            labels[row, used : used + len(masked)] = np.where(targets, masked, IGNORE_INDEX)
            used += len(masked)
            seqs.advance()
            if used == context:
                break
    return inputs, labels
