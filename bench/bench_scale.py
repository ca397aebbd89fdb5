"""Benchmark: the whole pipeline (corpus → tokenizer → binarize) at 1x, 4x and 16x of a base corpus.

The base corpus is `--base-mb` MB of the installed site-packages' .py files, one
repository per top-level package (as in `bench_peer.py`); size N holds N copies of
it, each copy's files starting with their own `# copy K` line so that no copy is a
duplicate of another and every stage's work grows with N. Each size runs through
`code-corpus run` on the local runner (default --direct_running_mode=multi_processing
--direct_num_workers=2), one command per stage, each measured in its own process
tree (wall and CPU seconds, peak RSS summed over the runner and its workers).

The tokenizer trains on a sample bounded by `tokenizer.sample_bytes` (set here to
`--sample-mb`), so its time and memory are bounded by configuration, not by N.

Prints, per size and stage, seconds, MB/s and peak RSS, then the spread of the whole
pipeline's throughput across sizes (goal: within ±25 %) and how much peak RSS grows
from 1x to 16x against the corpus' 16-fold growth.

    .venv/bin/python bench/bench_scale.py --base-mb 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
import tempfile

import yaml

from bench_peer import METADATA_FILE, REPOS_DIR, build_corpus, measure, warm_cache

SIZES = (1, 4, 16)
STAGES = ("corpus", "tokenizer", "binarize")


def write_config(work: str, sample_mb: float) -> str:
    config = {
        "name": "scale",
        "stages": list(STAGES),
        "sources": {"local": [{"path": REPOS_DIR, "metadata": METADATA_FILE}]},
        "tokenizer": {"vocab_size": 4000, "sample_bytes": int(sample_mb * 1e6)},
    }
    path = os.path.join(work, "scale.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def run_size(root: str, work: str, base_mb: float, copies: int, sample_mb: float, beam_args: list[str]) -> dict:
    corpus = build_corpus(root, work, base_mb * copies, copies, distinct=True)
    warm_cache(os.path.join(work, REPOS_DIR))
    cli = shutil.which("code-corpus", path=os.path.dirname(sys.executable)) or "code-corpus"
    config, out = write_config(work, sample_mb), os.path.join(work, "datasets")
    stages = {}
    for stage in STAGES:
        command = [cli, "--log-level", "WARNING", "run", "--config", config, "--out", out, "--stages", stage, "--version", "v0001"]
        stages[stage] = measure([*command, *beam_args], os.path.join(work, f"{stage}.log"))
    return {"corpus": corpus, "stages": stages}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-mb", type=float, default=4.0, help="size of the 1x corpus in MB (default 4)")
    parser.add_argument("--sample-mb", type=float, default=4.0, help="tokenizer.sample_bytes in MB (default 4)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    parser.add_argument("--work", default=None, help="scratch directory (default: a new temporary one)")
    args, beam_args = parser.parse_known_args(argv)
    beam_args = beam_args or ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    print(f"local runner: {' '.join(beam_args)}; tokenizer sample <= {args.sample_mb:g} MB")
    print(f"{'size':>4} {'files':>6} {'MB':>6} {'stage':>9} {'seconds':>8} {'CPU s':>6} {'MB/s':>6} {'peak RSS MB':>12}")
    totals = {}
    for copies in SIZES:
        work = tempfile.mkdtemp(prefix=f"bench-scale-{copies}x-", dir=args.work)
        try:
            result = run_size(args.root, work, args.base_mb, copies, args.sample_mb, beam_args)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        corpus, mb = result["corpus"], result["corpus"]["bytes"] / 1e6
        for stage, r in result["stages"].items():
            print(
                f"{copies:>3}x {corpus['files']:6d} {mb:6.1f} {stage:>9} {r['seconds']:8.1f} {r['cpu_seconds']:6.1f} "
                f"{mb / r['seconds']:6.2f} {r['peak_rss_mb']:12.0f}"
            )
        seconds = sum(r["seconds"] for r in result["stages"].values())
        peak = max(r["peak_rss_mb"] for r in result["stages"].values())
        totals[copies] = {"mb": mb, "seconds": seconds, "rate": mb / seconds, "peak": peak}
        print(f"{copies:>3}x {corpus['files']:6d} {mb:6.1f} {'all':>9} {seconds:8.1f} {'':6} {mb / seconds:6.2f} {peak:12.0f}")
    rates = [t["rate"] for t in totals.values()]
    mean = sum(rates) / len(rates)
    spread = max(abs(r - mean) / mean for r in rates)
    first, last = totals[SIZES[0]], totals[SIZES[-1]]
    print(f"throughput across sizes: {min(rates):.2f}-{max(rates):.2f} MB/s, within ±{spread:.0%} of the mean (goal ±25 %)")
    print(
        f"corpus {last['mb'] / first['mb']:.1f}x larger, peak RSS {last['peak'] / first['peak']:.2f}x "
        f"({first['peak']:.0f} → {last['peak']:.0f} MB)"
    )


if __name__ == "__main__":
    main()
