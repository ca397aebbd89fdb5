"""`code-corpus inspect | head` and `code-corpus diff | head`: a reader that closes the pipe ends the command quietly.

Python ignores SIGPIPE, so a write to a pipe whose reader has gone raises BrokenPipeError;
before, `inspect` and `diff` let it out as a traceback (or as "Exception ignored" when the
interpreter flushed stdout at exit). Now they stop as `show` does, and as standard Unix tools
do: nothing on stderr, exit 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.pipeline.test_show import write_version

DOCUMENTS = [{"id": f"{n:024x}", "text": f"print({n})\n", "lang": "Python"} for n in range(6000)]


def two_versions(tmp_path) -> tuple[str, str]:
    """Two versions whose documents overlap by half, with their files' hashes listed (as `inspect` prints them)."""
    versions = write_version(tmp_path / "a", 10, DOCUMENTS[:4000]), write_version(tmp_path / "b", 10, DOCUMENTS[2000:])
    for version in versions:
        path = os.path.join(version, "manifest.json")
        with open(path) as f:
            manifest = json.load(f)
        for name, entry in manifest["files"].items():
            with open(os.path.join(version, name), "rb") as f:
                entry["sha256"] = hashlib.sha256(f.read()).hexdigest()
        with open(path, "w") as f:
            json.dump(manifest, f)
    return versions


def run_with_closed_reader(*args: str) -> tuple[int, str]:
    """Run `code-corpus ARGS` with a stdout pipe whose reader is gone before the command writes."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    proc.stdout.close()  # the reader is gone long before the interpreter has started
    stderr = proc.stderr.read()
    return proc.wait(timeout=120), stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["inspect", "diff"])
def test_a_closed_pipe_ends_the_command_quietly(tmp_path, command):
    older, newer = two_versions(tmp_path)
    args = ["inspect", newer] if command == "inspect" else ["diff", older, newer, "--all-ids"]
    code, stderr = run_with_closed_reader(*args)
    assert (code, stderr) == (0, "")


@pytest.mark.slow
def test_diff_into_head_prints_its_first_line_and_no_error(tmp_path):
    older, newer = two_versions(tmp_path)
    script = f"{sys.executable} -m pipeline.cli diff {older} {newer} --all-ids | head -1; exit ${{PIPESTATUS[0]}}"
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}
    )
    assert (proc.returncode, proc.stderr) == (0, "") and len(proc.stdout.splitlines()) == 1
