"""Wall time, CPU time and peak RSS of a command and every process it starts (from /proc)."""

from __future__ import annotations

import os
import subprocess
import threading
import time


def tree_usage(root_pid: int) -> dict[int, tuple[int, float]]:
    """{pid: (resident bytes, CPU seconds)} of a process and all its descendants, from /proc."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stats[int(entry)] = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    usage, stack = {}, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        if pid in stats:  # fields after the name: state is [0], utime [11], stime [12], rss [21]
            fields = stats[pid]
            usage[pid] = (int(fields[21]) * page, (int(fields[11]) + int(fields[12])) / tick)
    return usage


def measure(argv: list[str], log_path: str) -> dict:
    """Run a command in its own process: its stdout, wall seconds, CPU seconds and peak RSS of its process tree.

    Both are sampled every 0.2 s over the whole tree (worker processes of a fork server
    are not children the side waits for, so rusage would miss them).
    """
    started, peak, cpu = time.perf_counter(), 0, {}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
        done = threading.Event()

        def sample():
            nonlocal peak
            while not done.wait(0.2):
                usage = tree_usage(proc.pid)
                peak = max(peak, sum(rss for rss, _ in usage.values()))
                cpu.update((pid, seconds) for pid, (_, seconds) in usage.items())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, _ = proc.communicate()
        done.set()
        sampler.join()
    if proc.returncode:
        with open(log_path) as log:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{log.read()[-3000:]}")
    return dict(stdout=stdout, seconds=time.perf_counter() - started, cpu_seconds=sum(cpu.values()), peak_rss_mb=peak / 2**20)
