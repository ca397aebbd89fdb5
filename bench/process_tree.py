"""Wall time, CPU time and peak memory of a command and every process it starts (from /proc).

Memory is PSS (proportional set size, `Pss:` of /proc/<pid>/smaps_rollup), not RSS: a
page shared by n processes counts 1/n in each, so the sum over a process tree counts
it once. Summed RSS counts it in every process that maps it: the shared libraries
(Python, Arrow, NumPy) each worker loads, and the pages a forked worker still shares
with its parent, which overstates a side that runs more processes. Every benchmark
that samples a process tree measures it this way and prints `MEMORY`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time

MEMORY = "PSS"  # what the figures named `peak_mb` measure, as the benchmarks print it


def pss_bytes(pid: int) -> int | None:
    """A process's proportional set size, or None once it has exited."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError):
        return None
    return None


def tree_usage(root_pid: int) -> dict[int, tuple[int, float]]:
    """{pid: (PSS bytes, CPU seconds)} of a process and all its descendants, from /proc."""
    if not os.path.exists("/proc/self/smaps_rollup"):
        raise RuntimeError("the benchmarks measure PSS from /proc/<pid>/smaps_rollup (Linux 4.14 or later)")
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
    tick = os.sysconf("SC_CLK_TCK")
    usage, stack = {}, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        memory = pss_bytes(pid) if pid in stats else None
        if memory is not None:  # fields after the name: state is [0], utime [11], stime [12]
            fields = stats[pid]
            usage[pid] = (memory, (int(fields[11]) + int(fields[12])) / tick)
    return usage


@contextlib.contextmanager
def sampling(pid: int):
    """Sample a process tree every 0.2 s while the block runs; the dict it yields then holds
    `cpu_seconds`, `peak_mb` and `process_cpu` (each process's CPU seconds, largest first: how
    evenly the work was spread) (worker processes of a fork server are not children anyone
    waits for, so rusage would miss them)."""
    peak, cpu, done, figures = 0, {}, threading.Event(), {}

    def sample():
        nonlocal peak
        while not done.wait(0.2):
            usage = tree_usage(pid)
            peak = max(peak, sum(memory for memory, _ in usage.values()))
            cpu.update((p, seconds) for p, (_, seconds) in usage.items())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield figures
    finally:
        done.set()
        sampler.join()
        process_cpu = sorted(cpu.values(), reverse=True)
        figures.update(cpu_seconds=sum(process_cpu), peak_mb=peak / 2**20, process_cpu=process_cpu)


def measure(argv: list[str], log_path: str) -> dict:
    """Run a command in its own process: its stdout, wall seconds, CPU seconds and peak PSS of its process tree."""
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
        with sampling(proc.pid) as figures:
            stdout, _ = proc.communicate()
    if proc.returncode:
        with open(log_path) as log:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{log.read()[-3000:]}")
    return dict(figures, stdout=stdout, seconds=time.perf_counter() - started)


def print_side_by_side(results: dict[str, dict], files: int, mb: float, extra: str = "") -> None:
    """One row per side (files/s, MB/s, peak memory; `extra`: one more integer column from each
    result), then ours over datatrove's: the figures each peer benchmark prints the same way."""
    extra_head = f" {extra:>7}" if extra else ""
    print(f"{'side':10} {'seconds':>8} {'CPU s':>7} {'files/s':>8} {'MB/s':>6} {f'peak {MEMORY} MB':>12}{extra_head}")
    for name, r in results.items():
        extra_cell = f" {r[extra]:7d}" if extra else ""
        print(
            f"{name:10} {r['seconds']:8.1f} {r['cpu_seconds']:7.1f} {files / r['seconds']:8.0f} "
            f"{mb / r['seconds']:6.2f} {r['peak_mb']:12.0f}{extra_cell}"
        )
    ours, theirs = results["ours"], results["datatrove"]
    print(
        f"ours / datatrove: throughput {theirs['seconds'] / ours['seconds']:.2f}, "
        f"CPU {ours['cpu_seconds'] / theirs['cpu_seconds']:.2f}, peak {MEMORY} {ours['peak_mb'] / theirs['peak_mb']:.2f} "
        f"(goals: throughput >= 1, peak {MEMORY} <= 1)"
    )
