"""Benchmark: the whitespace-spanning BPE and binarization on the installed site-packages' .py code.

The .py files under site-packages are ordered by a hash of their path and split into
a training sample and held-out text (`--train-mb`, `--test-mb`). Then, each in a fresh
process so that its peak RSS is its own:

    ours     `train_tokenizer` (pieces cut only at newlines, tokens span spaces and tabs)
    gpt2     the same BPE trainer, special tokens and vocabulary size, with GPT-2's
             byte-level regex pre-tokenization instead

Prints training time, peak RSS, tokens per byte and encoding speed of each on the
held-out text, and how many fewer tokens ours needs (goal: >= 30%; the paper reports
45% against GPT-2's own tokenizer, §3.4).

Binarization: the held-out files (and, for the marginal cost, their first quarter) become a
version's documents/ Parquet, and the binarize stage (`binarize_version`, the DirectRunner) writes
its shards; its throughput is compared with `Tokenizer.encode_batch` (and `encode_batch_fast`: the
same ids without the character offsets) alone over the same texts, and with the encoder the stage
calls (`encoder.encoder_for`: tiktoken from the same merges, one thread), in CPU seconds (this process
and Beam's worker processes) (goal: the stage's CPU <= 1.2x the encoder's) and in wall seconds.

    .venv/bin/python bench/bench_tokenizer.py
    .venv/bin/python bench/bench_tokenizer.py --train-mb 12 --test-mb 24 --vocab-size 50000
    .venv/bin/python bench/bench_tokenizer.py --direct_running_mode=multi_processing --direct_num_workers=2
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import sysconfig
import tempfile
import time

from tokenizers import Tokenizer, pre_tokenizers

from infra.version import write_manifest
from infra.writers import write_parquet
from pipeline.options import make_pipeline_options
from schemas import arrow
from schemas.config import BinarizeConfig
from schemas.records import Document, record_id
from tokenizer_training.binarize import binarize_version
from tokenizer_training.encoder import encoder_for
from tokenizer_training.tokenizer import bpe_trainer, new_tokenizer, save_tokenizer, train_tokenizer

MB = 1 << 20


def split_files(root: str, train_bytes: int, test_bytes: int) -> tuple[list[str], list[str]]:
    """UTF-8 .py files (<= 1 MB), in path-hash order: the first train_bytes to train, the next test_bytes held out."""
    paths = []
    for dirpath, _, filenames in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in filenames if n.endswith(".py")]
    paths.sort(key=lambda p: hashlib.sha256(os.path.relpath(p, root).encode()).hexdigest())
    train, test, total = [], [], 0
    for path in paths:
        text = read_text(path)
        if text is None or not text or len(text) > MB:
            continue
        size = len(text.encode("utf-8"))
        if total < train_bytes:
            train.append(path)
        elif total < train_bytes + test_bytes:
            test.append(path)
        else:
            break
        total += size
    return train, test


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (UnicodeDecodeError, OSError):
        return None


def stream(paths: list[str]):
    """Texts read one at a time, as the tokenizer stage streams its sample."""
    for path in paths:
        text = read_text(path)
        if text:
            yield text


def gpt2_style(texts, vocab_size: int, min_frequency: int) -> Tokenizer:
    """The baseline: identical trainer settings, GPT-2's regex pre-tokenization."""
    tokenizer = new_tokenizer()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.train_from_iterator(texts, trainer=bpe_trainer(vocab_size, min_frequency))
    return tokenizer


def train_one(kind: str, train: list[str], test: list[str], vocab_size: int, out: str, results) -> None:
    """Child process: train one tokenizer, save it, count tokens on the held-out text."""
    started = time.perf_counter()
    if kind == "ours":
        tokenizer = train_tokenizer(stream(train), vocab_size, min_frequency=2)
    else:
        tokenizer = gpt2_style(stream(train), vocab_size, min_frequency=2)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    save_tokenizer(tokenizer, out)
    texts = list(stream(test))
    started = time.perf_counter()
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    encode_mbs = sum(len(t.encode("utf-8")) for t in texts) / MB / (time.perf_counter() - started)
    data = sum(len(t.encode("utf-8")) for t in texts)
    results.put((kind, seconds, peak_mb, tokens / data, encode_mbs, tokenizer.get_vocab_size()))


def cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for (Beam's workers, once a pipeline ends).

    rusage, not /proc sampling: a sampler reading every process's stat 5 times a second costs CPU of its own.
    """
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def encoders_alone(texts: list[str], tokenizer_dir: str) -> tuple[dict, int, str]:
    """(CPU s, wall s) of `tokenizers`' encode_batch(_fast) and of binarize's encoder over the texts; tokens; its name."""
    tokenizer = Tokenizer.from_file(os.path.join(tokenizer_dir, "tokenizer.json"))
    tokenizer.encode_special_tokens = True
    alone = {}
    for method in ("encode_batch", "encode_batch_fast"):
        cpu, started = cpu_seconds(), time.perf_counter()
        encodings = getattr(tokenizer, method)(texts)
        tokens = sum(len(e.ids) for e in encodings)
        alone[method] = (cpu_seconds() - cpu, time.perf_counter() - started)
    with open(os.path.join(tokenizer_dir, "tokenizer.json"), encoding="utf-8") as f:
        encoder = encoder_for(f.read(), "uint16")
    name = f"binarize's {encoder.name}"
    cpu, started = cpu_seconds(), time.perf_counter()
    assert sum(len(ids) for ids in encoder.encode(texts)) == tokens
    alone[name] = (cpu_seconds() - cpu, time.perf_counter() - started)
    return alone, tokens, name


def stage_alone(texts: list[str], tokenizer_dir: str, workdir: str, beam_args: list[str]) -> tuple[float, float, int]:
    """The binarize stage with the texts as a version's documents: CPU s, wall s, tokens written."""
    version = os.path.join(workdir, "v0001")
    docs = [Document(id=record_id(t), kind="code", text=t, source="local") for t in texts]
    rows = [d.to_row() for d in sorted(docs, key=lambda d: d.id)]
    sha, size = write_parquet(os.path.join(version, "documents", "part-00000-of-00001.parquet"), arrow.DOCUMENT, rows)
    files = {"documents/part-00000-of-00001.parquet": {"sha256": sha, "bytes": size, "rows": len(rows)}}
    write_manifest(version, {"name": "bench", "version": "v0001", "files": files})  # binarize reads the files it lists
    os.symlink(tokenizer_dir, os.path.join(version, "tokenizer"))
    out = os.path.join(workdir, "out")
    os.makedirs(out)
    cpu, started = cpu_seconds(), time.perf_counter()
    entries = binarize_version(version, out, BinarizeConfig(num_shards=4), 0, make_pipeline_options(beam_args))
    seconds = (cpu_seconds() - cpu, time.perf_counter() - started)
    return (*seconds, sum(s["tokens"] for s in entries["shards"]["splits"].values()))


def binarize_throughput(test: list[str], tokenizer_dir: str, workdir: str, beam_args: list[str]) -> None:
    """The binarize stage against the encoders alone, in CPU seconds (steady on a busy machine) and wall seconds.

    The stage also runs on the first quarter of the files, so that its marginal CPU per MB (start-up cancels)
    can be set against its encoder's."""
    texts = list(stream(test))
    quarter = texts[: len(texts) // 4]
    data, quarter_data = (sum(len(t.encode("utf-8")) for t in part) / MB for part in (texts, quarter))
    alone, tokens, encoder = encoders_alone(texts, tokenizer_dir)
    *small, _ = stage_alone(quarter, tokenizer_dir, os.path.join(workdir, "quarter"), beam_args)
    *staged, written = stage_alone(texts, tokenizer_dir, os.path.join(workdir, "all"), beam_args)
    assert written == tokens, (written, tokens)

    print(f"\nbinarization of {len(texts)} files, {data:.1f} MB, {tokens:,} tokens ({' '.join(beam_args) or 'in_memory'})")
    print(f"  {'':32} {'CPU s':>7} {'MB/CPU s':>9} {'wall s':>7} {'MB/s':>7}")
    rows = [*alone.items(), ("binarize stage", staged), (f"binarize stage, {quarter_data:.1f} MB", small)]
    for name, (cpu_s, wall_s) in rows:
        mb = quarter_data if name.endswith(" MB") else data
        print(f"  {name:32} {cpu_s:7.2f} {mb / cpu_s:9.2f} {wall_s:7.2f} {mb / wall_s:7.2f}")
    for name in ("encode_batch", encoder):
        cpu_ratio, wall_ratio = (staged[i] / alone[name][i] for i in (0, 1))
        print(f"  stage / {name}: CPU {cpu_ratio:.2f} (goal <= 1.2), wall {wall_ratio:.2f}")
    marginal = (staged[0] - small[0]) / (data - quarter_data)
    fixed = staged[0] - marginal * data
    print(
        f"  stage marginal CPU s/MB {marginal:.3f} (start-up {fixed:.2f} CPU s) / {encoder}'s "
        f"{alone[encoder][0] / data:.3f}: {marginal * data / alone[encoder][0]:.2f}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-mb", type=float, default=12.0, help="training sample size (MB of .py files)")
    parser.add_argument("--test-mb", type=float, default=24.0, help="held-out text for tokens/byte and binarization")
    parser.add_argument("--vocab-size", type=int, default=50_000, help="learned vocabulary of both tokenizers")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="folder of .py files")
    args, beam_args = parser.parse_known_args(argv)

    train, test = split_files(args.root, int(args.train_mb * MB), int(args.test_mb * MB))
    print(f"{args.root}: {len(train)} files to train on, {len(test)} held out; vocabulary {args.vocab_size:,}")
    with tempfile.TemporaryDirectory() as workdir:
        spawn = multiprocessing.get_context("spawn")
        results = spawn.Queue()
        found = {}
        for kind in ("ours", "gpt2"):
            child = spawn.Process(
                target=train_one, args=(kind, train, test, args.vocab_size, os.path.join(workdir, kind), results)
            )
            child.start()
            found[kind] = results.get()
            child.join()
        header = ("tokenizer", "train s", "peak RSS MB", "tokens/byte", "encode MB/s", "vocab")
        print("\n{:<10} {:>8} {:>12} {:>12} {:>12} {:>7}".format(*header))
        for kind, seconds, peak, per_byte, encode_mbs, vocab in found.values():
            print(f"{kind:<10} {seconds:8.1f} {peak:12.0f} {per_byte:12.4f} {encode_mbs:12.2f} {vocab:7,}")
        fewer = 1 - found["ours"][3] / found["gpt2"][3]
        print(f"ours / gpt2 tokens: {found['ours'][3] / found['gpt2'][3]:.3f}  ({fewer:.1%} fewer; goal >= 30%)")
        binarize_throughput(test, os.path.join(workdir, "ours"), os.path.join(workdir, "bin"), beam_args)


if __name__ == "__main__":
    main()
