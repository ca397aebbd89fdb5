"""The program's version: what `code-corpus --version` prints and every manifest records.

Imports nothing heavy (no Beam, no pyarrow), so `--version` answers at once.
"""

from __future__ import annotations

import os
import subprocess

PACKAGE_VERSION = "0.1.0"  # setup.py reads it from here


def code_version() -> str:
    """The package version, plus the git commit of the code when run from a checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return PACKAGE_VERSION
    return f"{PACKAGE_VERSION}+g{commit}"
