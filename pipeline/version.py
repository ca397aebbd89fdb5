"""Dataset versions on disk: naming, staging, committing, and the manifest.

A version is built in a hidden staging directory (`.<version>.partial`) and renamed
into place only after its manifest is written, so a directory named like a version
is always complete. A staging directory left by a killed run is reported and
removed by the next run.

`manifest.json` holds only what the inputs and config determine, so two runs of the
same config give the same bytes; wall-clock facts go into `run.json` beside it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess

import pipeline
from pipeline.writers import write_json

MANIFEST = "manifest.json"
RUN_INFO = "run.json"
VERSION_PATTERN = re.compile(r"^v(\d{4,})$")
MANIFEST_FORMAT = 1

log = logging.getLogger(__name__)


class VersionError(RuntimeError):
    """A version that cannot be created or read as asked."""


def code_version() -> str:
    """The package version, plus the git commit of the code when run from a checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return pipeline.__version__
    return f"{pipeline.__version__}+g{commit}"


class VersionStore:
    """The versions of one dataset: `<out>/<name>/vNNNN`."""

    def __init__(self, out_root: str, name: str):
        self.dataset_dir = os.path.join(out_root, name)

    def path(self, version: str) -> str:
        return os.path.join(self.dataset_dir, version)

    def next_version(self) -> str:
        taken = [int(m.group(1)) for v in self._entries() if (m := VERSION_PATTERN.match(v.lstrip(".").split(".")[0]))]
        return f"v{max(taken, default=0) + 1:04d}"

    def _entries(self) -> list[str]:
        return os.listdir(self.dataset_dir) if os.path.isdir(self.dataset_dir) else []

    def clean_incomplete(self) -> list[str]:
        """Remove staging directories left by killed runs; return what was removed."""
        removed = []
        for entry in sorted(self._entries()):
            if entry.endswith(".partial"):
                log.warning("removing %s: an earlier run stopped before committing it", entry)
                shutil.rmtree(os.path.join(self.dataset_dir, entry))
                removed.append(entry)
        return removed

    def begin(self, version: str | None, overwrite: bool) -> tuple[str, str]:
        """(version name, staging dir) for a new version."""
        version = version or self.next_version()
        if not VERSION_PATTERN.match(version):
            raise VersionError(f"version names look like v0001, got {version!r}")
        final = self.path(version)
        if os.path.exists(final) and not overwrite:
            raise VersionError(f"{final} already exists; pass --overwrite to replace it or pick another --version")
        staging = os.path.join(self.dataset_dir, f".{version}.partial")
        if os.path.exists(staging):
            shutil.rmtree(staging)
        os.makedirs(staging)
        return version, staging

    def commit(self, staging: str, version: str) -> str:
        final = self.path(version)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(staging, final)
        return final


def read_manifest(version_dir: str) -> dict:
    path = os.path.join(version_dir, MANIFEST)
    if not os.path.isfile(path):
        raise VersionError(f"{version_dir} is not a complete dataset version (no {MANIFEST})")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_manifest(version_dir: str, manifest: dict) -> None:
    """Write the manifest atomically: a reader sees the old one or the new one."""
    tmp = os.path.join(version_dir, MANIFEST + ".tmp")
    write_json(tmp, manifest)
    os.replace(tmp, os.path.join(version_dir, MANIFEST))


def write_run_info(version_dir: str, info: dict) -> None:
    path = os.path.join(version_dir, RUN_INFO)
    runs = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            runs = json.load(f).get("runs", [])
    write_json(path, {"runs": runs + [info]})
