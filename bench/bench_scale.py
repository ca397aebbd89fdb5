"""Benchmark: the whole pipeline (corpus → tokenizer → binarize) at 1x, 4x, 16x and 64x of a base corpus.

The base corpus is `--base-mb` MB of the installed site-packages' .py files, one
repository per top-level package (as in `bench_peer.py`); size N holds N copies of
it, each copy's files starting with their own `# copy K` line so that no copy is a
duplicate of another and every stage's work grows with N. Each size runs through
`code-corpus run` on the local runner (default --direct_running_mode=multi_processing
--direct_num_workers=2), one command per stage, each measured in its own process
tree (wall and CPU seconds, peak memory summed over the runner and its workers, as PSS:
`process_tree.py`).

The tokenizer trains on a sample bounded by `tokenizer.sample_bytes` (set here to
`--sample-mb`), so its time and memory are bounded by configuration, not by N.

Every stage has a start-up cost that does not depend on the corpus (starting the runner
and its workers, imports, setup, the version's report); a first run on a tiny corpus
(`--startup-kb`, a few files) shows it. Prints, per size and stage, seconds, MB/s and
peak memory; then the marginal throughput (MB added / seconds added) from 1x to 4x and
from 4x to 16x (and on), for the whole pipeline and for the stages whose work grows
with the corpus: if cost per MB does not grow with size they agree (goal: within ±25 %);
then peak memory at 16x against 1x (goal: at most 1.3x) and the 64x row's peak (goal:
at most 3 GB; at the default 24 MB base that row is about 1.5 GB of code).

    .venv/bin/python bench/bench_scale.py --base-mb 24               # sizes 1,4,16,64
    .venv/bin/python bench/bench_scale.py --base-mb 24 --sizes 1,4,16
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
import tempfile

import yaml
from process_tree import MEMORY, measure
from site_corpus import METADATA_FILE, REPOS_DIR, build_corpus, warm_cache

SIZES = (1, 4, 16, 64)
MEMORY_GROWTH_GOAL = 1.3  # peak memory at 16x over 1x
PEAK_GOAL_MB = 3000  # peak memory of the 64x row
STAGES = ("corpus", "tokenizer", "binarize")
SCALING_STAGES = ("corpus", "binarize")  # the tokenizer's work is bounded by tokenizer.sample_bytes


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


def run_size(root: str, work: str, mb: float, copies: int, sample_mb: float, beam_args: list[str]) -> dict:
    corpus = build_corpus(root, work, mb, copies, distinct=True)
    warm_cache(os.path.join(work, REPOS_DIR))
    cli = shutil.which("code-corpus", path=os.path.dirname(sys.executable)) or "code-corpus"
    config, out = write_config(work, sample_mb), os.path.join(work, "datasets")
    stages = {}
    for stage in STAGES:
        command = [cli, "--log-level", "WARNING", "run", "--config", config, "--out", out]
        command += ["--stages", stage, "--dataset-version", "v0001"]
        stages[stage] = measure([*command, *beam_args], os.path.join(work, f"{stage}.log"))
    return {"corpus": corpus, "stages": stages}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-mb", type=float, default=24.0, help="size of the 1x corpus in MB (default 24)")
    parser.add_argument("--startup-kb", type=float, default=50.0, help="size of the start-up run's corpus (default 50 KB)")
    parser.add_argument("--sample-mb", type=float, default=4.0, help="tokenizer.sample_bytes in MB (default 4)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    parser.add_argument("--work", default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="multiples of the base corpus (default 1,4,16,64)")
    args, beam_args = parser.parse_known_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    beam_args = beam_args or ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    print(f"local runner: {' '.join(beam_args)}; tokenizer sample <= {args.sample_mb:g} MB")
    print(f"{'size':>8} {'files':>6} {'MB':>6} {'stage':>9} {'seconds':>8} {'CPU s':>6} {'MB/s':>6} {f'peak {MEMORY} MB':>12}")
    runs = {"start-up": (args.startup_kb / 1000, 1), **{f"{n}x": (args.base_mb * n, n) for n in sizes}}
    totals, startup = {}, {}
    for label, (mb, copies) in runs.items():
        work = tempfile.mkdtemp(prefix=f"bench-scale-{label}-", dir=args.work)
        try:
            result = run_size(args.root, work, mb, copies, args.sample_mb, beam_args)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        corpus, mb = result["corpus"], result["corpus"]["bytes"] / 1e6
        for stage, r in result["stages"].items():
            print(
                f"{label:>8} {corpus['files']:6d} {mb:6.1f} {stage:>9} {r['seconds']:8.1f} {r['cpu_seconds']:6.1f} "
                f"{mb / r['seconds']:6.2f} {r['peak_mb']:12.0f}"
            )
        seconds = sum(r["seconds"] for r in result["stages"].values())
        peak = max(r["peak_mb"] for r in result["stages"].values())
        print(f"{label:>8} {corpus['files']:6d} {mb:6.1f} {'all':>9} {seconds:8.1f} {'':6} {mb / seconds:6.2f} {peak:12.0f}")
        stage_seconds = {stage: r["seconds"] for stage, r in result["stages"].items()}
        if label == "start-up":
            startup = {"seconds": seconds, "peak": peak, "stages": stage_seconds}
        else:
            totals[label] = {"mb": mb, "seconds": seconds, "rate": mb / seconds, "peak": peak, "stages": stage_seconds}
    print(f"start-up (corpus, tokenizer and binarize on {args.startup_kb:g} KB): {startup['seconds']:.1f} s")
    print("marginal throughput, (MB added) / (seconds added) from one size to the next:")
    labels = list(totals)
    for stage in ("all", *SCALING_STAGES):
        seconds = {label: t["seconds"] if stage == "all" else t["stages"][stage] for label, t in totals.items()}
        steps = {
            f"{a}→{b}": (totals[b]["mb"] - totals[a]["mb"]) / max(seconds[b] - seconds[a], 1e-9)
            for a, b in zip(labels, labels[1:])
        }
        mean = sum(steps.values()) / len(steps)
        spread = max(abs(rate - mean) / mean for rate in steps.values())
        shown = ", ".join(f"{step} {rate:.2f}" for step, rate in steps.items())
        print(f"  {stage:>9}: {shown} MB/s, within ±{spread:.0%} of their mean (goal ±25 %)")
    shown = ", ".join(f"{label} {t['rate']:.2f}" for label, t in totals.items())
    print(f"whole pipeline, start-up included: {shown} MB/s")
    first = totals[f"{sizes[0]}x"]
    for label, t in list(totals.items())[1:]:
        print(
            f"{label}: corpus {t['mb'] / first['mb']:.1f}x larger, peak {MEMORY} {t['peak'] / first['peak']:.2f}x "
            f"({first['peak']:.0f} → {t['peak']:.0f} MB; start-up run {startup['peak']:.0f} MB), "
            f"{(t['peak'] - first['peak']) / (t['mb'] - first['mb']):.2f} MB of {MEMORY} per added MB of corpus"
        )
    if "16x" in totals and "1x" in totals:
        print(f"peak {MEMORY} 16x / 1x: {totals['16x']['peak'] / totals['1x']['peak']:.2f} (goal <= {MEMORY_GROWTH_GOAL})")
    if "64x" in totals:
        print(f"peak {MEMORY} at 64x ({totals['64x']['mb']:.0f} MB): {totals['64x']['peak']:.0f} MB (goal <= {PEAK_GOAL_MB})")


if __name__ == "__main__":
    main()
