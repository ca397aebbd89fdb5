"""Ctrl-C during `code-corpus run`: one line, no traceback, no version committed, nothing staged left.

Before, Ctrl-C once gave a traceback and once was swallowed inside Beam, after which the
run committed a version. Now SIGINT is remembered as well as raised, the commit checks
for it, and the run removes its staging folder and says so. The tests send SIGINT to the
run's whole process group, as a terminal does, and to the run's process alone (as `kill -INT`
does) with Beam's worker processes running beside it: 3 s after staging starts, the moment
Beam's first worker process appears (a worker started after the signal once left Beam's
teardown waiting on it for ever), and as the corpus stage writes its documents.
Known limit: a terminal's Ctrl-C also reaches Beam's multi-processing workers, which may
print their own KeyboardInterrupt while they start; the run itself ends as here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import DIRECT_MODES, ROOT, copy_code_sample

BOUND = 300


def wait_for(moment: str, run: subprocess.Popen, staging) -> None:
    """Return at `moment` of the run: 'staging' (3 s after its staging folder appears), 'workers'
    (Beam's first worker process started, once staging) or 'documents' (the corpus stage writes its documents)."""
    deadline = time.monotonic() + BOUND

    def reached() -> bool:
        if moment == "workers":  # the run may start other processes (git) before it stages
            return staging.exists() and bool(psutil.Process(run.pid).children())
        return (staging / "documents" if moment == "documents" else staging).exists()

    while run.poll() is None and time.monotonic() < deadline and not reached():
        time.sleep(0.01)
    assert run.poll() is None, f"the run ended before the moment {moment!r}"
    if moment == "staging":
        time.sleep(3.0)  # into the Beam pipeline


def processes_left(session: int, grace: float = 5.0) -> list[str]:
    """The live processes (not zombies) of the run's session, e.g. its Beam workers, after `grace` seconds to end."""
    deadline = time.monotonic() + grace
    while True:
        left = []
        for p in psutil.process_iter(["status", "cmdline"]):
            try:
                if os.getsid(p.pid) == session and p.info["status"] != psutil.STATUS_ZOMBIE:
                    left.append(f"{p.pid}: {' '.join(p.info['cmdline'] or [])[:120]}")
            except (ProcessLookupError, psutil.Error):
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, whole_group, moment",
    [
        ("in_memory", True, "staging"),
        ("multi_processing", False, "staging"),
        ("multi_processing", False, "workers"),
        ("multi_processing", False, "documents"),
    ],
)
def test_ctrl_c_stops_a_run_cleanly(tmp_path, mode, whole_group, moment):
    out = tmp_path / "out"
    cli = shutil.which("code-corpus", path=os.path.dirname(sys.executable)) or "code-corpus"
    command = [cli, "run", "--config", copy_code_sample(tmp_path), "--out", str(out), *DIRECT_MODES[mode]]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(moment, run, out / "sample" / ".v0001.partial")
        (os.killpg if whole_group else os.kill)(run.pid, signal.SIGINT)
        stdout, stderr = run.communicate(timeout=BOUND)
        left = processes_left(run.pid)
    finally:
        if run.poll() is None or processes_left(run.pid, grace=0):
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "error: interrupted (Ctrl-C)", stderr[-3000:]
    assert "stage corpus: starting" in stderr and "interrupted: nothing was committed; removed" in stderr
    assert sorted(os.listdir(out / "sample")) == []  # no version, no staging folder, no lock
    assert left == []  # no worker process outlives the run
