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
    .venv/bin/python bench/bench_scale.py --base-mb 24 --sizes 1,16 --baseline c8dec55   # against a release

With `--baseline REF`, the release at git REF is exported into the scratch folder and run
too (its own packages first on the path, checked before it runs), on the same corpora, one
size after the other (so both see the same machine), and the two marginal throughputs of
the whole pipeline are printed with their ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
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


def write_config(work: str, sample_mb: float, vocab_size: int = 4000) -> str:
    config = {
        "name": "scale",
        "stages": list(STAGES),
        "sources": {"local": [{"path": REPOS_DIR, "metadata": METADATA_FILE}]},
        "tokenizer": {"vocab_size": vocab_size, "sample_bytes": int(sample_mb * 1e6)},
    }
    path = os.path.join(work, "scale.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def run_size(root: str, work: str, mb: float, copies: int, args, beam_args: list[str], clis: dict) -> dict:
    """Build one size's corpus, then run every stage on it with each tree's CLI (`clis`: name → command)."""
    corpus = build_corpus(root, work, mb, copies, distinct=True)
    warm_cache(os.path.join(work, REPOS_DIR))
    config = write_config(work, args.sample_mb, args.vocab_size)
    trees = {}
    for name, cli in clis.items():
        out, stages = os.path.join(work, f"datasets-{name}"), {}
        flag = version_flag(cli)
        for stage in STAGES:
            command = [*cli, "--log-level", "WARNING", "run", "--config", config, "--out", out, "--stages", stage]
            command += [flag, "v0001"]
            stages[stage] = measure([*command, *beam_args], os.path.join(work, f"{name}-{stage}.log"))
        trees[name] = stages
    return {"corpus": corpus, "trees": trees}


def version_flag(cli: list[str]) -> str:
    """The `run` flag that names the dataset version (releases before --dataset-version called it --version)."""
    usage = subprocess.run([*cli, "run", "--help"], check=True, capture_output=True, text=True).stdout
    return "--dataset-version" if "--dataset-version" in usage else "--version"


def baseline_cli(ref: str, work: str) -> list[str]:
    """The CLI of the release at git `ref`, exported into `work` and run on this interpreter's packages."""
    tree = os.path.join(work, f"baseline-{ref}")
    os.makedirs(tree)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    archive = subprocess.run(["git", "-C", repo, "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    # PYTHONSAFEPATH: `python -c` (and Beam's workers, `python -m`) would put the working directory
    # first on sys.path, and a run from this checkout would import this checkout, not the release.
    env = ["env", f"PYTHONPATH={tree}", "PYTHONSAFEPATH=1"]
    where = [*env, sys.executable, "-c", "import pipeline; print(pipeline.__file__)"]
    found = subprocess.run(where, capture_output=True, text=True)
    if not found.stdout.startswith(tree + os.sep):
        raise RuntimeError(f"the baseline {ref} imports {found.stdout.strip() or found.stderr[-500:]}, not its own tree {tree}")
    return [*env, sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())"]


def print_rows(name: str, label: str, corpus: dict, stages: dict) -> dict:
    """One row per stage and one for the whole; return the whole's figures."""
    mb = corpus["bytes"] / 1e6
    for stage, r in stages.items():
        print(
            f"{name:>9} {label:>8} {corpus['files']:6d} {mb:6.1f} {stage:>9} {r['seconds']:8.1f} {r['cpu_seconds']:6.1f} "
            f"{mb / r['seconds']:6.2f} {r['peak_mb']:12.0f}"
        )
    seconds = sum(r["seconds"] for r in stages.values())
    peak = max(r["peak_mb"] for r in stages.values())
    row = f"{name:>9} {label:>8} {corpus['files']:6d} {mb:6.1f} {'all':>9} {seconds:8.1f} {'':6} {mb / seconds:6.2f}"
    print(f"{row} {peak:12.0f}")
    by_stage = {s: r["seconds"] for s, r in stages.items()}
    return {"mb": mb, "seconds": seconds, "rate": mb / seconds, "peak": peak, "stages": by_stage}


def marginal(totals: dict, stage: str) -> dict[str, float]:
    """(MB added) / (seconds added) from each size to the next, for the whole ("all") or one stage."""
    labels = list(totals)
    seconds = {label: t["seconds"] if stage == "all" else t["stages"][stage] for label, t in totals.items()}
    return {
        f"{a}→{b}": (totals[b]["mb"] - totals[a]["mb"]) / max(seconds[b] - seconds[a], 1e-9) for a, b in zip(labels, labels[1:])
    }


def print_summary(name: str, sizes: list[int], totals: dict, startup: dict, startup_kb: float) -> None:
    print(f"[{name}] start-up (corpus, tokenizer and binarize on {startup_kb:g} KB): {startup['seconds']:.1f} s")
    print(f"[{name}] marginal throughput, (MB added) / (seconds added) from one size to the next:")
    for stage in ("all", *SCALING_STAGES):
        steps = marginal(totals, stage)
        mean = sum(steps.values()) / len(steps)
        spread = max(abs(rate - mean) / mean for rate in steps.values())
        shown = ", ".join(f"{step} {rate:.2f}" for step, rate in steps.items())
        print(f"  {stage:>9}: {shown} MB/s, within ±{spread:.0%} of their mean (goal ±25 %)")
    shown = ", ".join(f"{label} {t['rate']:.2f}" for label, t in totals.items())
    print(f"[{name}] whole pipeline, start-up included: {shown} MB/s")
    first = totals[f"{sizes[0]}x"]
    for label, t in list(totals.items())[1:]:
        print(
            f"[{name}] {label}: corpus {t['mb'] / first['mb']:.1f}x larger, peak {MEMORY} {t['peak'] / first['peak']:.2f}x "
            f"({first['peak']:.0f} → {t['peak']:.0f} MB; start-up run {startup['peak']:.0f} MB), "
            f"{(t['peak'] - first['peak']) / (t['mb'] - first['mb']):.2f} MB of {MEMORY} per added MB of corpus"
        )
    if "16x" in totals and "1x" in totals:
        growth = totals["16x"]["peak"] / totals["1x"]["peak"]
        print(f"[{name}] peak {MEMORY} 16x / 1x: {growth:.2f} (goal <= {MEMORY_GROWTH_GOAL})")
    if "64x" in totals:
        top = totals["64x"]
        print(f"[{name}] peak {MEMORY} at 64x ({top['mb']:.0f} MB): {top['peak']:.0f} MB (goal <= {PEAK_GOAL_MB})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-mb", type=float, default=24.0, help="size of the 1x corpus in MB (default 24)")
    parser.add_argument("--startup-kb", type=float, default=50.0, help="size of the start-up run's corpus (default 50 KB)")
    parser.add_argument("--sample-mb", type=float, default=4.0, help="tokenizer.sample_bytes in MB (default 4)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    parser.add_argument("--work", default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="multiples of the base corpus (default 1,4,16,64)")
    parser.add_argument("--vocab-size", type=int, default=4000, help="tokenizer.vocab_size (default 4000; the product: 50000)")
    parser.add_argument("--baseline", help="a git ref of an earlier release: run it too, on the same corpora, and compare")
    args, beam_args = parser.parse_known_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    if len(sizes) < 2:
        parser.error("--sizes needs at least two sizes for a marginal throughput")
    beam_args = beam_args or ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    print(f"local runner: {' '.join(beam_args)}; tokenizer sample <= {args.sample_mb:g} MB, vocabulary {args.vocab_size}")
    scratch = tempfile.mkdtemp(prefix="bench-scale-", dir=args.work)
    try:
        clis = {"this": [shutil.which("code-corpus", path=os.path.dirname(sys.executable)) or "code-corpus"]}
        if args.baseline:
            clis[args.baseline] = baseline_cli(args.baseline, scratch)
        head = f"{'tree':>9} {'size':>8} {'files':>6} {'MB':>6} {'stage':>9} {'seconds':>8} {'CPU s':>6} {'MB/s':>6}"
        print(f"{head} {f'peak {MEMORY} MB':>12}")
        runs = {"start-up": (args.startup_kb / 1000, 1), **{f"{n}x": (args.base_mb * n, n) for n in sizes}}
        totals, startup = {name: {} for name in clis}, {}
        for label, (mb, copies) in runs.items():
            work = tempfile.mkdtemp(prefix=f"{label}-", dir=scratch)
            try:
                result = run_size(args.root, work, mb, copies, args, beam_args, clis)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            for name, stages in result["trees"].items():
                whole = print_rows(name, label, result["corpus"], stages)
                if label == "start-up":
                    startup[name] = whole
                else:
                    totals[name][label] = whole
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for name in clis:
        print_summary(name, sizes, totals[name], startup[name], args.startup_kb)
    if args.baseline:
        first, last = f"{sizes[0]}x", f"{sizes[-1]}x"
        rates = {name: marginal({k: totals[name][k] for k in (first, last)}, "all") for name in clis}
        ours, theirs = (next(iter(rates[name].values())) for name in clis)
        shown = f"this {ours:.2f} MB/s, {args.baseline} {theirs:.2f} MB/s"
        print(f"whole pipeline, marginal {first}→{last}: {shown}, ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
