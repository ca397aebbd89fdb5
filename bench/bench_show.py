"""`code-corpus show` on generated versions of 100,000 and 1,000,000 rejections: seconds and memory.

    python bench/bench_show.py [--rows 1000000]

The versions are written with Arrow (the generator of tests/pipeline/test_show.py: 300 B
excerpts, row groups of 100,000 rows); each query runs `pipeline.show.sample` in a fresh
process of its own (so no query reuses memory another freed). Memory is the growth of the
peak RSS over the query (VmHWM, reset through /proc/self/clear_refs just before it), so
the imports do not count.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import tempfile
import time

from pipeline.show import Query, sample
from tests.pipeline.test_show import excerpt_bytes, write_version

QUERIES = {
    "--stage filters --reason long-line": Query(stage="filters", reason="long-line"),
    "--grep 'file 9999[0-9] '": Query(grep="file 9999[0-9] "),
    "(no filter: every row a candidate)": Query(),
}


def status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\s+(\d+)", f.read()).group(1))


def measure(version: str, query: Query) -> tuple[float, int]:
    """(seconds, kB the peak RSS grew by) of one sample."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before, start = status_kb("VmRSS"), time.perf_counter()
    rows = sample(version, query)
    seconds = time.perf_counter() - start
    assert len(rows) == query.n
    return seconds, status_kb("VmHWM") - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rejections in the large version")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        versions = {n: write_version(f"{tmp}/{n}", n, files=max(1, n // 250_000)) for n in (args.rows // 10, args.rows)}
        print(f"{'rejections':>10}  {'excerpts MB':>11}  {'query':<36}  {'seconds':>7}  {'peak RSS growth MB':>18}")
        fresh = multiprocessing.get_context("spawn")
        growth = {}
        for n, version in versions.items():
            for label, query in QUERIES.items():
                with fresh.Pool(1) as pool:
                    seconds, growth[n, label] = pool.apply(measure, (version, query))
                megabytes = excerpt_bytes(version) / 1e6
                print(f"{n:>10,}  {megabytes:>11.0f}  {label:<36}  {seconds:>7.2f}  {growth[n, label] / 1024:>18.1f}")
    small, large = versions
    for label in QUERIES:
        print(f"peak RSS growth, {large:,} / {small:,} rows, {label}: {growth[large, label] / growth[small, label]:.2f}x")


if __name__ == "__main__":
    main()
