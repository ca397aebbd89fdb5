"""The corpus stage's memory is bounded by its buffers, not by the corpus.

File contents travel once, from the reader to the spill and run files on disk; what
crosses a shuffle is keys, ids and paths. So a corpus twice as large as a memory
budget goes through the corpus stage while the process's RSS stays within that budget
of what a tiny corpus needs (a stage that held the corpus would add at least its size).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sysconfig
import threading

import psutil
import pytest

from infra import writers
from pipeline.run import run_stages
from schemas.config import load_config
from tests.conftest import SAMPLE_REPOS

BUDGET_MB = 40  # what the run may add to the tiny corpus' peak RSS (measured: 30 MB at 134 MiB, 31 MB at 60 MiB)
CORPUS_MB = 2.25 * BUDGET_MB  # at 5-6 MB/s through the corpus stage, the test's CPU is this corpus
SMALL_BUFFERS = 1 << 20  # the writers' run buffer and row groups, so their fixed cost stays well inside the budget
LICENSE = os.path.join(SAMPLE_REPOS, "cli-tools", "LICENSE")  # a permissive license from the sample


def build_repos(folder, megabytes: float) -> None:
    """Copies of the installed packages' .py files as repositories; each copy's files differ from the last one's."""
    root, total, files = sysconfig.get_paths()["purelib"], 0, []
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        for name in sorted(n for n in names if n.endswith(".py")):
            path = os.path.join(dirpath, name)
            size = os.path.getsize(path)
            if 0 < size < 200_000 and not os.path.islink(path):
                files.append(path)
                total += size
            if total >= megabytes * 1e6 / 2:
                break
        if total >= megabytes * 1e6 / 2:
            break
    metadata = {}
    for copy in range(2):
        for path in files:
            rel = os.path.relpath(path, root)
            repo = f"c{copy}-{rel.split(os.sep, 1)[0].removesuffix('.py')}"
            target = os.path.join(folder, "repos", repo, rel)
            if repo not in metadata:
                metadata[repo] = {"stars": len(repo), "origin": "github"}
                os.makedirs(os.path.join(folder, "repos", repo))
                shutil.copy(LICENSE, os.path.join(folder, "repos", repo, "LICENSE"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(path, "rb") as src, open(target, "wb") as dst:
                dst.write(f"# copy {copy}\n".encode() + src.read())
    with open(os.path.join(folder, "repos.json"), "w") as f:
        json.dump(metadata, f)
    config = os.path.join(folder, "corpus.yaml")
    with open(config, "w") as f:
        # Emails only, and no HumanEval search: the secret and address detectors take half the CPU,
        # the search a sixth, and neither holds anything across files.
        scrub = {"secrets": False, "ip_addresses": False}
        sources = {"local": [{"path": "repos", "metadata": "repos.json"}]}
        json.dump(
            {"name": "m", "stages": ["corpus"], "sources": sources, "scrub": scrub, "decontamination": {"humaneval": False}}, f
        )


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def peak_rss_mb(run) -> float:
    """Run `run()` while sampling the RSS of this process and its children every 20 ms; the peak in MB."""
    me, peak, done = psutil.Process(), [tree_rss(psutil.Process())], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], tree_rss(me))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    return peak[0] / 2**20


def corpus_bytes(folder) -> int:
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(os.path.join(folder, "repos")) for n in names)


def run_corpus_stage(folder) -> None:
    run_stages(load_config(str(folder / "corpus.yaml")), str(folder / "out"), ["corpus"], [])


def tiny_then_large_peaks(tiny, large) -> tuple[float, float]:
    """In a fresh process: the peak RSS of the tiny run (which also loads every module the
    large run needs), then of the large run, with the writers' buffers set small."""
    writers.RUN_BYTES = writers.ROW_GROUP_BYTES = SMALL_BUFFERS
    return peak_rss_mb(lambda: run_corpus_stage(tiny)), peak_rss_mb(lambda: run_corpus_stage(large))


@pytest.mark.slow
def test_corpus_stage_peak_rss_stays_within_a_budget_smaller_than_the_corpus(tmp_path):
    tiny, large = tmp_path / "tiny", tmp_path / "large"
    build_repos(tiny, 0.2)
    build_repos(large, CORPUS_MB)
    assert corpus_bytes(large) >= 2 * BUDGET_MB * 2**20

    # A fresh process: a test worker's heap, shaped by the tests before, would move the baseline.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        baseline, peak = pool.apply(tiny_then_large_peaks, (tiny, large))
    manifest = json.loads((large / "out" / "m" / "v0001" / "manifest.json").read_text())
    assert manifest["counts"]["dedup"]["kept"] > 1000  # the whole corpus went through
    assert peak - baseline <= BUDGET_MB, (
        f"peak RSS {peak:.0f} MB, {peak - baseline:.0f} MB over the tiny corpus' {baseline:.0f} MB"
    )
