"""Batches from shards: packing, labels, and the cursor that makes a resumed run read the same data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.trainer.conftest import write_version
from tokenizer_training.tokenizer import load_tokenizer
from trainer.data import IGNORE_INDEX, Cursor, MaskedSequences, ShardDocuments, next_batch
from trainer.masking import SpecialIds, restore

CONTEXT = 32


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    version = write_version(str(tmp_path_factory.mktemp("data")), train_docs=60, valid_docs=5, max_len=40)
    return ShardDocuments(version, "train"), SpecialIds.from_tokenizer(load_tokenizer(version))


def batches(docs, ids, n, cursor=None, seed=0):
    seqs = MaskedSequences(docs, ids, CONTEXT, seed, shuffle=True, cursor=cursor or Cursor())
    return [next_batch(seqs, 4) for _ in range(n)], seqs.cursor


def test_rows_are_packed_masked_chunks_with_sentinels_and_padding_ignored(shards):
    docs, ids = shards
    (batch,), _ = batches(docs, ids, 1)
    inputs, labels = batch
    assert inputs.shape == labels.shape == (4, CONTEXT)
    sentinel = ids.is_sentinel(inputs)
    pad = inputs == ids.pad
    assert sentinel.any() and (labels[sentinel] == IGNORE_INDEX).all() and (labels[pad] == IGNORE_INDEX).all()
    rest = ~sentinel & ~pad
    assert (labels[rest] == inputs[rest]).all()
    for row in pad:  # padding only ever ends a row
        first = int(np.argmax(row)) if row.any() else len(row)
        assert row[first:].all()


def test_an_epoch_visits_every_token_of_every_document_once(shards):
    docs, ids = shards
    seqs = MaskedSequences(docs, ids, CONTEXT, 0, shuffle=True, cursor=Cursor())
    restored = []
    while seqs.cursor.epoch == 0:
        masked, _ = seqs.peek()
        restored += restore(masked, ids)
        seqs.advance()
        seqs.peek()  # moves the cursor past the last chunk of a document
    original = [t for i in range(len(docs)) for t in docs.get(i)[2].tolist()]
    assert sorted(restored) == sorted(original) and len(restored) == docs.num_tokens()
    assert restored != original  # shuffled document order


def test_a_saved_cursor_gives_the_same_following_batches(shards):
    docs, ids = shards
    whole, _ = batches(docs, ids, 30)
    first, cursor = batches(docs, ids, 12)
    rest, _ = batches(docs, ids, 18, cursor=dataclasses.replace(cursor))
    for a, b in zip(whole, first + rest):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    (other,), _ = batches(docs, ids, 1, seed=1)
    assert not np.array_equal(other[0], whole[0][0])  # the seed decides order and masks


def test_loss_is_the_mean_over_target_tokens_only():
    """Positions whose next token is a sentinel or padding do not count: changing their logits changes nothing."""
    import torch  # here, not at collection, where every test worker would pay for it

    from trainer.train import masked_lm_loss

    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, input_ids, use_cache):
            return type("Out", (), {"logits": self.logits})()

    torch.manual_seed(0)
    inputs = torch.tensor([[0, 10, 11, 3, 12, 3, 13, 2, 1, 1]])
    labels = torch.tensor([[0, 10, 11, IGNORE_INDEX, 12, IGNORE_INDEX, 13, 2, IGNORE_INDEX, IGNORE_INDEX]])
    logits = torch.randn(1, 10, 20)
    loss, count = masked_lm_loss(Fixed(logits), inputs, labels, torch.device("cpu"))
    targets = [(t - 1, int(labels[0, t])) for t in range(1, 10) if labels[0, t] != IGNORE_INDEX]
    manual = sum(-torch.log_softmax(logits[0, p], -1)[y] for p, y in targets) / len(targets)
    assert int(count) == len(targets) == 5 and torch.allclose(loss, manual)
    changed = logits.clone()
    changed[0, [2, 4, 7, 8]] += 100 * torch.randn(4, 20)  # positions predicting a sentinel or padding
    assert torch.allclose(masked_lm_loss(Fixed(changed), inputs, labels, torch.device("cpu"))[0], loss)
