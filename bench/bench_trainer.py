"""Trainer throughput: the real training loop (trainer.train.train) on a synthetic version.

The version holds a word-level tokenizer with the pipeline's default vocabulary size
(50,000 learned tokens + 259 specials) and shards of random documents of 50-4000
tokens, so chunking, causal masking and packing do the work they do on real shards.
Prints tokens/s (non-padding tokens trained on per second, after the first logging
interval) and, on a GPU of known peak, model FLOPs utilisation.

    CPU, tiny preset (fp32):
        .venv/bin/python bench/bench_trainer.py
    GPU, 125m preset under bf16 autocast, with MFU:
        python bench/bench_trainer.py --device cuda --preset 125m --context-length 2048 --batch-size 8 --steps 60
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from schemas.config import TrainConfig
from tokenizer_training.indexed_dataset import IndexedDatasetBuilder, token_dtype
from tokenizer_training.tokenizer import SPECIAL_TOKENS, add_document_start, save_tokenizer
from trainer.train import train


def synthetic_version(root: str, vocab_size: int, documents: int, seed: int) -> str:
    """A version directory with tokenizer/ and shards/train-00000 of random documents."""
    words = [f"w{i}" for i in range(vocab_size)]
    tokenizer = Tokenizer(models.WordLevel({t: i for i, t in enumerate([*SPECIAL_TOKENS, *words])}, unk_token="<pad>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    add_document_start(tokenizer)
    save_tokenizer(tokenizer, os.path.join(root, "tokenizer"))
    os.makedirs(os.path.join(root, "shards"))
    rng = np.random.default_rng(seed)
    first_word = len(SPECIAL_TOKENS)
    dtype = token_dtype(tokenizer.get_vocab_size())
    builder = IndexedDatasetBuilder(os.path.join(root, "shards", "train-00000.bin"), dtype)
    for _ in range(documents):
        body = rng.integers(first_word, first_word + vocab_size, size=int(rng.integers(50, 4000)))
        builder.add_document(np.concatenate([[0], body]))  # <|endoftext|> first, as the binarize stage writes
    builder.finalize(os.path.join(root, "shards", "train-00000.idx"))
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--context-length", type=int, default=256)
    parser.add_argument("--vocab-size", type=int, default=50_000, help="learned tokens (the specials come on top)")
    parser.add_argument("--documents", type=int, default=300)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log_every = max(1, args.steps // 6)
    cfg = TrainConfig(
        preset=args.preset,
        steps=args.steps,
        batch_size=args.batch_size,
        context_length=args.context_length,
        lr=3e-4,
        warmup_steps=min(10, args.steps),
        checkpoint_every=args.steps,
        keep_checkpoints=1,
        eval_batches=0,
        log_every=log_every,
        device=args.device,
    )
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        version = synthetic_version(tmp, args.vocab_size, args.documents, seed=0)
        print(f"synthetic version built in {time.perf_counter() - started:.1f} s")
        result = train(cfg, version)
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"\npreset {args.preset} ({result.parameters / 1e6:.1f}M parameters), {device}, "
        f"{'bf16 autocast' if args.device == 'cuda' else 'fp32'}, batch {args.batch_size} x {args.context_length}"
    )
    print(f"tokens/s: {result.tokens_per_second:,.0f}  (steps {log_every + 1}-{args.steps}, padding excluded)")
    if result.mfu is not None:
        print(f"MFU: {result.mfu:.1%}  (last logging interval)")
    print(f"final loss: {result.final_loss:.3f}")


if __name__ == "__main__":
    main()
