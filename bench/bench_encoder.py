"""Benchmark: tiktoken built from our tokenizer's merges against `tokenizers`, on held-out site-packages code.

The .py files under site-packages are split as bench_tokenizer.py splits them (`--train-mb` to
train our tokenizer, the next `--test-mb` held out), or `--tokenizer` names a tokenizer.json to
reuse. Each encoder then encodes the held-out files in a fresh process (so that
RAYON_NUM_THREADS reaches `tokenizers`' thread pool and each process's CPU is its own):

    tokenizers 1 thread     Tokenizer.encode_batch_fast, RAYON_NUM_THREADS=1
    tokenizers pool         the same with its thread pool (one thread per core)
    tiktoken 1 thread       Encoding.encode_ordinary_batch, num_threads=1, ranks from our merges
    tiktoken 2 threads      the same, num_threads=2
    binarize encoder        tokenizer_training.encoder.encoder_for as binarize calls it (one thread, ids into arrays)

It checks that every encoder gives the same token ids on every document (`<|endoftext|>`
first, special-token text encoded as plain text, as binarize does) and prints CPU seconds
(rusage of the process, all its threads), MB per CPU second (MB/s per core), wall seconds and
each encoder's CPU against `tokenizers` single-threaded.

    .venv/bin/python bench/bench_encoder.py                      # --train-mb 4 --test-mb 16
    .venv/bin/python bench/bench_encoder.py --train-mb 2 --test-mb 4
    .venv/bin/python bench/bench_encoder.py --tokenizer datasets/sample/v0001/tokenizer/tokenizer.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import sysconfig
import tempfile
import time

import numpy as np
from bench_tokenizer import MB, split_files, stream
from tokenizers import Tokenizer

from tokenizer_training.encoder import TiktokenEncoder, encoder_for
from tokenizer_training.tokenizer import save_tokenizer, train_tokenizer

# name → (RAYON_NUM_THREADS or None for the pool, what to run)
ENCODERS = {
    "tokenizers 1 thread": ("1", "tokenizers"),
    "tokenizers pool": (None, "tokenizers"),
    "tiktoken 1 thread": ("1", "tiktoken 1"),
    "tiktoken 2 threads": ("1", "tiktoken 2"),
    "binarize encoder": (None, "binarize"),
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def encode_all(kind: str, text: str, texts: list[str]) -> list:
    """Every text's ids (arrays or lists), `<|endoftext|>` first, by one encoder."""
    if kind == "tokenizers":
        tokenizer = Tokenizer.from_str(text)
        tokenizer.encode_special_tokens = True
        return [e.ids for e in tokenizer.encode_batch_fast(texts)]
    if kind == "binarize":
        return encoder_for(text, "uint32").encode(texts)
    encoder = TiktokenEncoder(json.loads(text), "uint32")
    threads = int(kind.split()[1])
    return [[encoder.first, *ids] for ids in encoder.encoding.encode_ordinary_batch(texts, num_threads=threads)]


def time_one(kind: str, tokenizer_file: str, test: list[str], results) -> None:
    """Child process: encode the held-out files, time it, and hash each document's ids."""
    with open(tokenizer_file, encoding="utf-8") as f:
        text = f.read()
    texts = list(stream(test))
    cpu, started = cpu_seconds(), time.perf_counter()
    encoded = encode_all(kind, text, texts)
    seconds = (cpu_seconds() - cpu, time.perf_counter() - started)
    digests = [hashlib.sha256(np.asarray(ids, dtype=np.uint32).tobytes()).hexdigest() for ids in encoded]
    results.put((seconds, sum(len(ids) for ids in encoded), digests))


def first_difference(tokenizer_file: str, texts: list[str], digests: dict) -> str:
    """Where the first document whose ids differ between encoders parts ways, in tokens of each."""
    names = list(digests)
    index = next(i for i in range(len(texts)) if len({digests[n][i] for n in names}) > 1)
    with open(tokenizer_file, encoding="utf-8") as f:
        text = f.read()
    tokenizer = Tokenizer.from_str(text)
    ours, theirs = (encode_all(k, text, [texts[index]])[0] for k in ("tokenizers", "tiktoken 1"))
    at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    shown = [[tokenizer.id_to_token(i) for i in ids[at : at + 4]] for ids in (ours, theirs)]
    return f"document {index}: tokenizers {shown[0]} against tiktoken {shown[1]} at token {at}"


def measure(tokenizer_file: str, test: list[str]) -> dict:
    """Each encoder in its own spawned process: name → ((CPU s, wall s), tokens, per-document digests)."""
    spawn = multiprocessing.get_context("spawn")
    results, found = spawn.Queue(), {}
    for name, (rayon_threads, kind) in ENCODERS.items():
        saved = os.environ.pop("RAYON_NUM_THREADS", None)
        if rayon_threads:
            os.environ["RAYON_NUM_THREADS"] = rayon_threads
        child = spawn.Process(target=time_one, args=(kind, tokenizer_file, test, results))
        child.start()
        os.environ.pop("RAYON_NUM_THREADS", None)
        if saved is not None:
            os.environ["RAYON_NUM_THREADS"] = saved
        found[name] = results.get()
        child.join()
    return found


def report(found: dict, data_mb: float, documents: int, difference: str | None) -> None:
    tokens = {n: t for n, (_, t, _) in found.items()}
    print(f"\n{documents} documents, {data_mb:.1f} MB, {tokens['tokenizers 1 thread']:,} tokens")
    print(f"  {'encoder':20} {'CPU s':>7} {'MB/CPU s':>9} {'wall s':>7} {'MB/s':>7} {'CPU / tokenizers 1 thread':>26}")
    base = found["tokenizers 1 thread"][0][0]
    for name, ((cpu_s, wall_s), _, _) in found.items():
        print(f"  {name:20} {cpu_s:7.2f} {data_mb / cpu_s:9.2f} {wall_s:7.2f} {data_mb / wall_s:7.2f} {cpu_s / base:26.3f}")
    same = difference is None
    print(f"  identical ids on every document: {'yes' if same else 'NO'}" + ("" if same else f"; {difference}"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-mb", type=float, default=4.0, help="training sample (MB of .py files)")
    parser.add_argument("--test-mb", type=float, default=16.0, help="held-out text to encode")
    parser.add_argument("--vocab-size", type=int, default=50_000, help="learned vocabulary")
    parser.add_argument("--tokenizer", help="a tokenizer.json to reuse instead of training one")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="folder of .py files")
    args = parser.parse_args(argv)

    train_mb = 0 if args.tokenizer else args.train_mb
    train, test = split_files(args.root, int(train_mb * MB), int(args.test_mb * MB))
    texts = list(stream(test))
    with tempfile.TemporaryDirectory() as workdir:
        tokenizer_file = args.tokenizer
        if not tokenizer_file:
            started = time.perf_counter()
            save_tokenizer(train_tokenizer(stream(train), args.vocab_size, min_frequency=2), workdir)
            tokenizer_file = os.path.join(workdir, "tokenizer.json")
            print(f"trained on {len(train)} files ({train_mb} MB) in {time.perf_counter() - started:.1f} s")
        print(f"encoder binarize uses: {encoder_for(open(tokenizer_file, encoding='utf-8').read(), 'uint32').name}")
        found = measure(tokenizer_file, test)
        digests = {name: d for name, (_, _, d) in found.items()}
        same = all(d == digests["tokenizers 1 thread"] for d in digests.values())
        difference = None if same else first_difference(tokenizer_file, texts, digests)
    report(found, sum(len(t.encode("utf-8")) for t in texts) / MB, len(texts), difference)


if __name__ == "__main__":
    main()
