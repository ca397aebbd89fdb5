"""Benchmark: the code-cleaning stages on the .py files of the installed site-packages.

Runs license → language → notebooks → decontamination → filters → dedup → scrub twice over the
same files, each in its own process so peak RSS is its own:

    beam   the pipeline's own stages (`pipeline.corpus.code_stages`) on the DirectRunner
    loop   the same RecordFns and dedup rule in a plain single-process Python loop

Both read the files from disk (and skip the few that are not UTF-8); every file is read once
before either run, so neither gets a colder page cache than the other. Prints seconds (wall
and CPU), files/s, MB/s and peak RSS of each, and the Beam/loop throughput ratio (goal: >= 0.5).

    .venv/bin/python bench/bench_cleaning.py --max-mb 40
    .venv/bin/python bench/bench_cleaning.py --max-mb 40 --direct_running_mode=multi_processing --direct_num_workers=2
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import sys
import sysconfig
import tempfile
import time

import apache_beam as beam
from apache_beam.internal.cloudpickle import cloudpickle
from pybloom_live import BloomFilter

from pipeline.corpus import CorpusFlow, code_stages
from pipeline.options import make_pipeline_options
from schemas.config import PipelineConfig
from schemas.records import Rejected, RepoFile
from transforms.base import ApplyStage
from transforms.dedup import dedup_key, survivor_rank

CONFIG = PipelineConfig(name="bench")


def list_files(root: str, max_bytes: int) -> list[str]:
    """Sorted .py files under root, up to max_bytes in total (files over 1 MB are skipped, as `read` would)."""
    paths, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name.endswith(".py") and os.path.isfile(path):
                size = os.path.getsize(path)
                if size <= CONFIG.read.max_file_bytes:
                    if total + size > max_bytes:
                        return paths
                    paths.append(path)
                    total += size
    return paths


def read_file(root: str, path: str) -> RepoFile | None:
    """A site-packages file as a RepoFile of its top-level package (stars from a hash of its name)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    rel = os.path.relpath(path, root)
    repo = rel.split(os.sep, 1)[0]
    stars = int(hashlib.sha256(repo.encode()).hexdigest()[:4], 16) % 1000
    return RepoFile(RepoFile.make_id("local", repo, rel, None), "local", repo, rel, None, "MIT", stars, len(data), text)


def run_beam(root: str, paths: list[str], beam_args: list[str]) -> dict:
    # This script is no module Beam's worker processes can import: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[read_file.__module__])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        with beam.Pipeline(options=make_pipeline_options(beam_args)) as p:
            flow = CorpusFlow(p, CONFIG, out_dir)
            files = p | beam.Create(paths) | "Read" >> beam.Map(lambda path: read_file(root, path)) | beam.Filter(bool)
            for stage in code_stages(flow):
                files = flow.add_stage(files | stage)
            kept = files | "CountKept" >> beam.combiners.Count.Globally()
            rejected = flow.rejected | "AllRejected" >> beam.Flatten() | "CountRejected" >> beam.combiners.Count.Globally()
            kept | beam.Map(lambda k, r: print(f"beam: kept={k} rejected={r}"), beam.pvalue.AsSingleton(rejected))
    return {"seconds": time.perf_counter() - started}


def run_loop(root: str, paths: list[str]) -> dict:
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


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the machine may be shared)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def measured(target, *args) -> dict:
    """Run target in this (child) process and add its CPU time and peak RSS."""
    started = cpu_seconds()
    result = target(*args)
    result["cpu_seconds"] = cpu_seconds() - started
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def warm_cache(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def in_child(target, *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measured, (target, *args))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-mb", type=float, default=40.0, help="stop adding files at this many MB (default 40)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    args, beam_args = parser.parse_known_args(argv)
    paths = list_files(args.root, int(args.max_mb * 1e6))
    mb = sum(os.path.getsize(p) for p in paths) / 1e6
    print(f"{len(paths)} .py files, {mb:.1f} MB, under {args.root}")
    warm_cache(paths)
    results = {"beam": in_child(run_beam, args.root, paths, beam_args), "loop": in_child(run_loop, args.root, paths)}
    print(f"{'path':6} {'seconds':>8} {'CPU s':>6} {'files/s':>9} {'MB/s':>6} {'peak RSS MB':>12}")
    for name, r in results.items():
        print(
            f"{name:6} {r['seconds']:8.1f} {r['cpu_seconds']:6.1f} {len(paths) / r['seconds']:9.0f} "
            f"{mb / r['seconds']:6.2f} {r['peak_rss_mb']:12.0f}"
        )
    ratio = results["loop"]["seconds"] / results["beam"]["seconds"]
    cpu_ratio = results["loop"]["cpu_seconds"] / results["beam"]["cpu_seconds"]
    print(f"beam / loop throughput: {ratio:.2f} wall, {cpu_ratio:.2f} CPU (goal >= 0.50)")


if __name__ == "__main__":
    main()
