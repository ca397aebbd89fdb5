"""Benchmark: where the pipeline's CPU goes, stage by stage, against its kernels alone.

For two sizes of bench_scale's corpus (`site_corpus.build_corpus`, copies of `--base-mb`
MB of site-packages code, each copy's files starting with their own `# copy K` line),
runs the corpus, tokenizer and binarize stages through `code-corpus run` on the local
runner (default --direct_running_mode=multi_processing --direct_num_workers=2), one
command per stage. Its CPU seconds are the rusage of the reaped child processes
(`RUSAGE_CHILDREN`): the runner and its SDK worker processes, which the runner waits
for when it stops them, so no /proc sampling adds CPU of its own.

Then, in this process and on the same data, the stage's kernels alone (CPU seconds by
`time.process_time`, which counts the Rust thread pools of `tokenizers` too):

    corpus     read (the local reader's `read_repo`), each cleaning RecordFn (license,
               language, notebooks, decontamination, filters, scrub), the exact-dedup key
               rule, format (`FormatCodeFn`), and the Parquet writer (`write_parquet` of
               the documents' rows, sorted by id as the shards are)
    tokenizer  the BPE trainer (`train_tokenizer`) on the stage's own sample
    binarize   the stage's encoder (`encoder_for`: tiktoken built from our merges) in batches of
               `BATCH_CHARS`, as the stage calls it

Marginal CPU per MB is (CPU seconds added) / (MB of corpus added) from the smaller size
to the larger, so each stage's fixed start-up cancels (the fixed CPU seconds that the
two sizes imply are printed too, for the pipeline and for the kernels). Prints, per stage and for the
whole, and for corpus + binarize (the stages whose work grows with the corpus: the
tokenizer's marginal CPU is noise), the pipeline's and the kernels' marginal CPU seconds per
MB and their ratio (goal: whole <= 1.3, binarize <= 1.2), then each kernel's MB/s per core at the larger size (the
MB that reached it over its CPU seconds). The tokenizer trains on at most
`tokenizer.sample_bytes` (default 100 MB), so past that its kernel adds nothing per MB.
The kernels' side holds the kept files and their documents in memory (a few times the
corpus' size).

    .venv/bin/python bench/bench_profile.py                              # 100 and 400 MB
    .venv/bin/python bench/bench_profile.py --base-mb 8 --sizes 8,24     # a quick look
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

from bench_scale import SCALING_STAGES, STAGES, write_config
from site_corpus import REPOS_DIR, build_corpus, warm_cache

from infra import storage
from infra.version import DOCUMENTS_DIR, MANIFEST, document_paths
from infra.writers import read_json, write_parquet
from pipeline.corpus import CorpusFlow, code_stages
from schemas import arrow
from schemas.config import load_config
from schemas.records import Rejected, RepoFile
from tokenizer_training.binarize import BATCH_CHARS
from tokenizer_training.encoder import encoder_for
from tokenizer_training.sample import choose_sample, iter_batches, iter_sample
from tokenizer_training.tokenizer import TOKENIZER_DIR, TOKENIZER_FILE, train_tokenizer
from transforms.base import ApplyStage
from transforms.dedup.exact import survivor_rank
from transforms.dedup.exact_keys import dedup_key
from transforms.formatting.code_files import FormatCodeFn
from transforms.sources.local.source import list_repos, read_repo

RATIO_GOAL = 1.3  # whole pipeline / kernels, CPU per MB
BINARIZE_GOAL = 1.2  # binarize / its encoder
DEDUP_AT = 5  # license, language, notebooks, decontamination, filters run before dedup; the rest after


class Kernels:
    """CPU seconds and MB in of each kernel, and the stage each belongs to."""

    def __init__(self):
        self.seconds, self.mb, self.stage = collections.Counter(), collections.Counter(), {}

    @contextlib.contextmanager
    def timed(self, stage: str, name: str, mb: float):
        started = time.process_time()
        try:
            yield
        finally:
            self.seconds[name] += time.process_time() - started
            self.mb[name] += mb
            self.stage[name] = stage

    def stage_seconds(self, stage: str) -> float:
        return sum(s for name, s in self.seconds.items() if self.stage[name] == stage)


def run_stage(command: list[str], log_path: str) -> dict:
    """Run one stage's command; its wall seconds and the CPU seconds of it and its reaped children."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    with open(log_path, "w") as log:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=log)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        with open(log_path) as log:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{log.read()[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu}


def run_pipeline(work: str, config: str, beam_args: list[str]) -> dict[str, dict]:
    cli = shutil.which("code-corpus", path=os.path.dirname(sys.executable)) or "code-corpus"
    out, stages = os.path.join(work, "datasets"), {}
    for stage in STAGES:
        command = [cli, "--log-level", "WARNING", "run", "--config", config, "--out", out]
        command += ["--stages", stage, "--dataset-version", "v0001", *beam_args]
        stages[stage] = run_stage(command, os.path.join(work, f"{stage}.log"))
    return stages


def mb_of(text: str) -> float:
    return len(text.encode("utf-8")) / 1e6


def clean(config, kernels: Kernels) -> list:
    """The corpus stage's reading, cleaning stages and dedup rule; the files kept, as RepoFiles."""
    fns = [s.fn for s in code_stages(CorpusFlow(None, config, "")) if isinstance(s, ApplyStage)]
    for fn in fns:
        fn.setup()
    best = {}
    for source in config.sources.local:
        for ref in list_repos(config.resolve(source.path), config.resolve(source.metadata)):
            with kernels.timed("corpus", "read", 0.0):
                records = [r for r in read_repo(ref, config.read.max_file_bytes) if isinstance(r, RepoFile)]
            kernels.mb["read"] += sum(r.size for r in records) / 1e6
            for record in records:
                for fn in fns[:DEDUP_AT]:
                    with kernels.timed("corpus", fn.stage, mb_of(record.content)):
                        record = fn(record)
                    if isinstance(record, Rejected):
                        break
                else:
                    with kernels.timed("corpus", "dedup key", mb_of(record.content)):
                        key = dedup_key(record.path, record.content)
                        if key not in best or survivor_rank(record) < survivor_rank(best[key]):
                            best[key] = record
    kept = []
    for record in best.values():
        for fn in fns[DEDUP_AT:]:
            with kernels.timed("corpus", fn.stage, mb_of(record.content)):
                record = fn(record)
        kept.append(record)
    return kept


def format_and_write(config, version_dir: str, files: list, kernels: Kernels) -> None:
    """The corpus stage's formatting and its Parquet writer of the documents."""
    boundaries = read_json(os.path.join(version_dir, MANIFEST))["star_buckets"]["boundaries"]
    format_fn = FormatCodeFn(config.seed)
    documents = []
    for record in files:
        with kernels.timed("corpus", "format", mb_of(record.content)):
            documents.append(format_fn(record, star_boundaries=boundaries))
    mb = sum(mb_of(d.text) for d in documents)
    with tempfile.TemporaryDirectory() as scratch, kernels.timed("corpus", "parquet writer", mb):
        rows = [d.to_row() for d in sorted(documents, key=lambda d: d.id)]
        write_parquet(os.path.join(scratch, "documents.parquet"), arrow.DOCUMENT, rows)


def train_and_encode(config, version_dir: str, kernels: Kernels) -> None:
    """The tokenizer stage's trainer on its sample, and binarize's encoder on every document."""
    paths, tok = document_paths(version_dir), config.tokenizer
    chosen = choose_sample(paths, config.seed, tok.sample_documents, tok.sample_fraction, tok.sample_bytes)
    sample = list(iter_sample(paths, chosen))
    with kernels.timed("tokenizer", "BPE trainer", sum(map(mb_of, sample))):
        train_tokenizer(sample, tok.vocab_size, tok.min_frequency)
    with open(os.path.join(version_dir, TOKENIZER_DIR, TOKENIZER_FILE)) as f:
        encoder = encoder_for(f.read(), "uint16")  # the stage's own encoder (tiktoken from our merges)
    texts = [t for batch in iter_batches(paths, ["text"]) for t in batch.column("text").to_pylist() if t]
    for batch in char_batches(texts, BATCH_CHARS):
        with kernels.timed("binarize", "encoder", sum(map(mb_of, batch))):
            encoder.encode(batch)


def char_batches(texts: list[str], max_chars: int):
    """Consecutive texts of about max_chars characters (plus one per text), as the stage's BatchElements makes them."""
    batch, size = [], 0
    for text in texts:
        if batch and size + len(text) + 1 > max_chars:
            yield batch
            batch, size = [], 0
        batch.append(text)
        size += len(text) + 1
    yield batch


def run_kernels(config_path: str, version_dir: str) -> Kernels:
    config, kernels = load_config(config_path), Kernels()
    files = clean(config, kernels)
    format_and_write(config, version_dir, files, kernels)
    del files
    train_and_encode(config, version_dir, kernels)
    return kernels


def run_size(args, mb: float, beam_args: list[str]) -> dict:
    work = tempfile.mkdtemp(prefix="bench-profile-", dir=args.work)
    try:
        corpus = build_corpus(args.root, work, mb, max(1, round(mb / args.base_mb)), distinct=True)
        warm_cache(os.path.join(work, REPOS_DIR))
        config = write_config(work, args.sample_mb)
        stages = run_pipeline(work, config, beam_args)
        version_dir = os.path.join(work, "datasets", "scale", "v0001")
        if not storage.exists(os.path.join(version_dir, DOCUMENTS_DIR)):
            raise RuntimeError(f"no {DOCUMENTS_DIR}/ in {version_dir}")
        kernels = run_kernels(config, version_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"mb": corpus["bytes"] / 1e6, "files": corpus["files"], "stages": stages, "kernels": kernels}


def print_table(small: dict, large: dict) -> None:
    added = large["mb"] - small["mb"]
    print(f"CPU seconds per MB of corpus added, {small['mb']:.1f} → {large['mb']:.1f} MB, and the fixed CPU s each implies:")
    print(f"{'stage':15} {'pipeline':>9} {'kernels':>8} {'ratio':>6} {'fixed: pipeline':>16} {'kernels':>8}")
    rows = {}
    for stage in STAGES:
        pipe = [run["stages"][stage]["cpu_seconds"] for run in (small, large)]
        kern = [run["kernels"].stage_seconds(stage) for run in (small, large)]
        rows[stage] = [(pipe[1] - pipe[0]) / added, (kern[1] - kern[0]) / added]
        rows[stage] += [pipe[0] - rows[stage][0] * small["mb"], kern[0] - rows[stage][1] * small["mb"]]
    rows["whole"] = [sum(row[i] for row in rows.values()) for i in range(4)]
    # The tokenizer's work stops at its sample, so its marginal CPU is noise: the stages that grow with the corpus.
    rows["+".join(SCALING_STAGES)] = [sum(rows[stage][i] for stage in SCALING_STAGES) for i in range(4)]
    for stage, (pipe, kern, pipe_fixed, kern_fixed) in rows.items():
        ratio = f"{pipe / kern:6.2f}" if kern > 1e-3 else f"{'-':>6}"
        print(f"{stage:15} {pipe:9.3f} {kern:8.3f} {ratio} {pipe_fixed:16.1f} {kern_fixed:8.1f}")
    print(f"goals: whole <= {RATIO_GOAL}, binarize <= {BINARIZE_GOAL}")
    kernels = large["kernels"]
    print(f"kernels at {large['mb']:.1f} MB: {'stage':>9} {'MB in':>7} {'CPU s':>7} {'MB/s per core':>14}")
    for name, seconds in kernels.seconds.items():
        mb = kernels.mb[name]
        print(f"  {name:18} {kernels.stage[name]:>9} {mb:7.1f} {seconds:7.2f} {mb / max(seconds, 1e-9):14.1f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,400", help="the two corpus sizes in MB (default 100,400)")
    parser.add_argument("--base-mb", type=float, default=25.0, help="MB of one copy of the code (default 25)")
    parser.add_argument("--sample-mb", type=float, default=100.0, help="tokenizer.sample_bytes in MB (default 100)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    parser.add_argument("--work", default=None, help="scratch directory (default: a new temporary one)")
    args, beam_args = parser.parse_known_args(argv)
    sizes = [float(s) for s in args.sizes.split(",")]
    if len(sizes) != 2 or sizes[0] >= sizes[1]:
        parser.error("--sizes takes two sizes in MB, the smaller first")
    beam_args = beam_args or ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    print(f"local runner: {' '.join(beam_args)}; pipeline CPU: rusage of the reaped children; load {os.getloadavg()[0]:.1f}")
    runs = []
    for mb in sizes:
        run = run_size(args, mb, beam_args)
        shown = ", ".join(f"{s} {r['seconds']:.1f} s wall / {r['cpu_seconds']:.1f} s CPU" for s, r in run["stages"].items())
        print(f"{run['mb']:.1f} MB ({run['files']} files): {shown}; kernels {sum(run['kernels'].seconds.values()):.1f} s CPU")
        runs.append(run)
    print_table(*runs)


if __name__ == "__main__":
    main()
