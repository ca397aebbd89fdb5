"""The project's own code passes its linter (settings in ruff.toml)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_code_passes_ruff():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
