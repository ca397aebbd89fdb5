"""Benchmark: the code-cleaning stages on the .py files of the installed site-packages.

Runs license → language → notebooks → decontamination → filters → dedup → scrub over the same
files on three paths, each in its own process so peak memory is its own:

    beam in_memory          the pipeline's own stages (`pipeline.corpus.code_stages`) on the local runner
    beam multi_processing   the same with --direct_running_mode=multi_processing --direct_num_workers=2
    loop                    the same RecordFns and dedup rule in a plain single-process Python loop

Each path runs at two sizes (`--small-mb`, `--large-mb`; past the installed files the
list repeats, each copy's files starting with their own `# copy K` line so no copy
is a duplicate of another). Start-up cancels in the marginal throughput, MB added per
second added, and the command prints one line per runner mode:
`marginal beam / loop throughput: R` (goals: in_memory >= 0.8, multi_processing >= 1.4).

Then, with `--stages-mb` (default 30), one line per stage: its MB/s per core, the MB
that reached it over the CPU seconds of its RecordFn in one process (`--stages-only`
prints just these).

Both read the files from disk (and skip the few that are not UTF-8); every file is read once
before any run, so none gets a colder page cache than another. Also prints seconds (wall
and CPU, the runner's worker processes included), MB/s and peak memory (PSS, summed over
the process tree as `process_tree.py` measures it) of each run.

    .venv/bin/python bench/bench_cleaning.py                  # --small-mb 100 --large-mb 400
    .venv/bin/python bench/bench_cleaning.py --stages-only    # the per-stage MB/s alone
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import itertools
import multiprocessing
import os
import sys
import sysconfig
import tempfile
import time

import apache_beam as beam
from apache_beam.internal.cloudpickle import cloudpickle
from process_tree import MEMORY, sampling
from pybloom_live import BloomFilter

from pipeline.corpus import CorpusFlow, code_stages
from pipeline.options import make_pipeline_options
from schemas.config import PipelineConfig
from schemas.records import Rejected, RepoFile
from transforms.base import ApplyStage
from transforms.dedup.exact import survivor_rank
from transforms.dedup.exact_keys import dedup_key

CONFIG = PipelineConfig(name="bench")


MODES = {
    "in_memory": ["--direct_running_mode=in_memory"],
    "multi_processing": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}
GOALS = {"in_memory": 0.8, "multi_processing": 1.4}


def installed_files(root: str) -> list[str]:
    """Sorted .py files under root (files over read.max_file_bytes are skipped, as `read` would)."""
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name.endswith(".py") and os.path.isfile(path) and not os.path.islink(path):
                if os.path.getsize(path) <= CONFIG.read.max_file_bytes:
                    paths.append(path)
    return paths


def list_files(files: list[str], max_bytes: int) -> list[tuple[str, int]]:
    """(path, copy) pairs up to max_bytes in total: the files in order, then again as copy 1, 2, ..."""
    picked, total = [], 0
    for copy in itertools.count():
        for path in files:
            size = os.path.getsize(path)
            if total + size > max_bytes:
                return picked
            picked.append((path, copy))
            total += size


def read_file(root: str, path_copy: tuple[str, int]) -> RepoFile | None:
    """A site-packages file as a RepoFile of its top-level package (stars from a hash of its name)."""
    path, copy = path_copy
    with open(path, "rb") as f:
        data = (f"# copy {copy}\n".encode() if copy else b"") + f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    rel = os.path.relpath(path, root)
    repo = f"c{copy}-{rel.split(os.sep, 1)[0]}"
    stars = int(hashlib.sha256(repo.encode()).hexdigest()[:4], 16) % 1000
    return RepoFile(RepoFile.make_id("local", repo, rel, None), "local", repo, rel, None, "MIT", stars, len(data), text)


def run_beam(root: str, paths: list[tuple[str, int]], beam_args: list[str]) -> dict:
    # This script is no module Beam's worker processes can import: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[read_file.__module__])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        with beam.Pipeline(options=make_pipeline_options(beam_args)) as p:
            flow = CorpusFlow(p, CONFIG, out_dir)
            files = (
                p
                | beam.Create(paths)
                | beam.Reshuffle()  # as ReadLocalRepos spreads its repositories over the workers
                | "Read" >> beam.Map(lambda path: read_file(root, path))
                | beam.Filter(bool)
            )
            for stage in code_stages(flow):
                files = flow.add_stage(files | stage)
            kept = files | "CountKept" >> beam.combiners.Count.Globally()
            rejected = flow.rejected | "AllRejected" >> beam.Flatten() | "CountRejected" >> beam.combiners.Count.Globally()
            kept | beam.Map(lambda k, r: print(f"beam: kept={k} rejected={r}"), beam.pvalue.AsSingleton(rejected))
    return {"seconds": time.perf_counter() - started}


def run_loop(root: str, paths: list[tuple[str, int]]) -> dict:
    started = time.perf_counter()
    stages = [s.fn for s in code_stages(CorpusFlow(None, CONFIG, "")) if isinstance(s, ApplyStage)]
    dedup_at = 5  # license, language, notebooks, decontamination, filters run before dedup; scrub after
    for fn in stages:
        fn.setup()
    rejected, best = 0, {}
    for path in paths:
        record = read_file(root, path)
        if record is None:
            continue
        for fn in stages[:dedup_at]:
            record = fn(record)
            if isinstance(record, Rejected):
                rejected += 1
                break
        else:
            key = dedup_key(record.path, record.content)
            if key in best:
                rejected += 1
                if survivor_rank(record) < survivor_rank(best[key]):
                    best[key] = record
            else:
                best[key] = record
    bloom = BloomFilter(CONFIG.dedup.bloom_capacity, CONFIG.dedup.bloom_error_rate)
    kept = 0
    for key, record in best.items():
        bloom.add(key, skip_check=True)
        for fn in stages[dedup_at:]:
            record = fn(record)
        kept += 1
    print(f"loop: kept={kept} rejected={rejected}")
    return {"seconds": time.perf_counter() - started}


def stage_throughput(root: str, paths: list[tuple[str, int]]) -> dict[str, float]:
    """MB/s per core of each RecordFn stage: the MB that reached it over its CPU seconds."""
    stages = [s.fn for s in code_stages(CorpusFlow(None, CONFIG, "")) if isinstance(s, ApplyStage)]
    for fn in stages:
        fn.setup()
    seconds, mb = collections.Counter(), collections.Counter()
    for path in paths:
        record = read_file(root, path)
        for fn in stages if record is not None else ():
            started = time.process_time()
            out = fn(record)
            seconds[fn.stage] += time.process_time() - started
            mb[fn.stage] += len(record.content.encode()) / 1e6
            if isinstance(out, Rejected):
                break
            record = out
    return {stage: mb[stage] / max(seconds[stage], 1e-9) for stage in seconds}


def warm_cache(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def in_child(target, *args) -> dict:
    """Run target in a fresh process; add CPU seconds and peak PSS of its whole process tree."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        with sampling(pool.apply(os.getpid)) as figures:
            result = pool.apply(target, args)
    return dict(result, **figures)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-mb", type=float, default=100.0, help="the smaller size in MB (default 100)")
    parser.add_argument("--large-mb", type=float, default=400.0, help="the larger size in MB (default 400)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    parser.add_argument("--stages-mb", type=float, default=30.0, help="MB for the per-stage MB/s (default 30)")
    parser.add_argument("--stages-only", action="store_true", help="print only the per-stage MB/s")
    args = parser.parse_args(argv)
    files = installed_files(args.root)
    warm_cache(files)
    throughputs = in_child(stage_throughput, args.root, list_files(files, int(args.stages_mb * 1e6)))
    print(f"MB/s per core of each stage on {args.stages_mb:g} MB (one process, CPU seconds of its RecordFn):")
    for stage, rate in throughputs.items():
        if stage not in ("cpu_seconds", "peak_mb"):
            print(f"  {stage:16} {rate:8.1f}")
    if args.stages_only:
        return
    sizes = {label: list_files(files, int(mb * 1e6)) for label, mb in (("small", args.small_mb), ("large", args.large_mb))}
    paths = {"loop": lambda picked: in_child(run_loop, args.root, picked)}
    for mode, beam_args in MODES.items():
        paths[f"beam {mode}"] = lambda picked, beam_args=beam_args: in_child(run_beam, args.root, picked, beam_args)
    print(f"{'path':22} {'size':>5} {'files':>6} {'MB':>6} {'seconds':>8} {'CPU s':>6} {'MB/s':>6} {f'peak {MEMORY} MB':>12}")
    results = {}
    for name, run in paths.items():
        for label, picked in sizes.items():
            mb = sum(os.path.getsize(path) for path, _ in picked) / 1e6
            r = results[name, label] = dict(run(picked), mb=mb)
            print(
                f"{name:22} {label:>5} {len(picked):6d} {mb:6.1f} {r['seconds']:8.1f} {r['cpu_seconds']:6.1f} "
                f"{mb / r['seconds']:6.2f} {r['peak_mb']:12.0f}"
            )

    def marginal(name: str, clock: str = "seconds") -> float:
        small, large = results[name, "small"], results[name, "large"]
        return (large["mb"] - small["mb"]) / max(large[clock] - small[clock], 1e-9)

    for mode, goal in GOALS.items():
        wall = marginal(f"beam {mode}") / marginal("loop")
        cpu = marginal(f"beam {mode}", "cpu_seconds") / marginal("loop", "cpu_seconds")
        print(f"{mode}: marginal beam / loop throughput: {wall:.2f} (goal >= {goal}); per CPU second: {cpu:.2f}")


if __name__ == "__main__":
    main()
