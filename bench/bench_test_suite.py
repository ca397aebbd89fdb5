"""The test suite's time, with the machine's speed at the time beside it.

Runs pytest as the README does (the full suite, or `--fast` for the `-m "not slow"` loop)
and prints pytest's closing line, the wall and CPU time of pytest and the processes it
waited for, the CPU time the host took from this machine meanwhile (steal, from
/proc/stat), and a fixed pure-Python loop timed before and after each run. On a shared
machine the same suite's time differs by a third from one hour to the next; CPU and steal
say how much of that was the machine. (The loop is a rough sign only: it moved by half
within minutes, and the suite's time divided by it moved more than the time itself.)

    .venv/bin/python bench/bench_test_suite.py --runs 3
    .venv/bin/python bench/bench_test_suite.py --fast -- --durations=10
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOP_ITERATIONS = 20_000_000
WIDTHS = [3, 8, 6, 6, 7, 19]


def loop_seconds(repeats: int = 3) -> float:
    """The fastest of `repeats` timings of a fixed pure-Python loop (the least disturbed one)."""
    best = float("inf")
    for _ in range(repeats):
        started, total = time.perf_counter(), 0
        for i in range(LOOP_ITERATIONS):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others, summed over this machine's CPUs, since boot."""
    with open("/proc/stat") as f:
        fields = f.readline().split()  # cpu user nice system idle iowait irq softirq steal ...
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(pytest_args: list[str]) -> dict:
    before = loop_seconds()
    steal, cpu, started = steal_seconds(), children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    cpu, steal = children_cpu_seconds() - cpu, steal_seconds() - steal
    after = loop_seconds()
    closing = re.findall(r"^=*\s*(\d+ (?:passed|failed).* in ([\d.]+)s.*?)\s*=*$", proc.stdout, re.M)
    if proc.returncode != 0 or not closing:
        sys.exit(f"pytest {' '.join(pytest_args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    line, seconds = closing[-1]
    return {
        "line": line,
        "pytest_s": float(seconds),
        "wall_s": wall,
        "cpu_s": cpu,
        "steal_s": steal,
        "loop_before_s": before,
        "loop_after_s": after,
        "output": proc.stdout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help='the fast loop: -m "not slow"')
    parser.add_argument("--runs", type=int, default=1, help="runs one after another")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args()
    pytest_args = ["-q", *(["-m", "not slow"] if args.fast else []), *args.pytest_args]
    print(f"pytest {' '.join(pytest_args)}; loop: {LOOP_ITERATIONS:,} additions, fastest of 3")
    header = ["run", "pytest s", "wall s", "CPU s", "steal s", "loop s before/after"]
    print("  ".join(f"{h:>{w}}" for h, w in zip(header, WIDTHS)))
    for run in range(1, args.runs + 1):
        r = run_suite(pytest_args)
        if "slowest" in r["output"]:  # --durations was asked for: its table
            print(r["output"][r["output"].rfind("\n", 0, r["output"].find("slowest")) + 1 :].rstrip())
        print(
            f"{run:>3}  {r['pytest_s']:>8.1f}  {r['wall_s']:>6.1f}  {r['cpu_s']:>6.1f}  {r['steal_s']:>7.1f}  "
            f"{r['loop_before_s']:>9.2f}/{r['loop_after_s']:<9.2f}   {r['line']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
