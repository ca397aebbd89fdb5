"""How long `code-corpus --version` and `--help` take to answer, against a bare interpreter's start.

    python bench/bench_cli_start.py [--runs 7]

Each command runs in a fresh process; the table gives the median wall and CPU seconds (user +
system of the child) over the runs. The CLI imports Beam, pyarrow and the stages only when a
command needs them, so these answer from the parser alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "code-corpus --version": [shutil.which("code-corpus") or "code-corpus", "--version"],
    "code-corpus run --help": [shutil.which("code-corpus") or "code-corpus", "run", "--help"],
}


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    print(f"load average {os.getloadavg()[0]:.1f}; median of {runs} runs")
    print(f"| {'command':<24} | wall s | CPU s |")
    print(f"| {'-' * 24} | ------ | ----- |")
    for name, command in COMMANDS.items():
        times = [timed(command) for _ in range(runs)]
        wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        print(f"| {name:<24} | {wall:6.2f} | {cpu:5.2f} |")


if __name__ == "__main__":
    main()
