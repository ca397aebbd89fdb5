"""Dataset versions on disk: naming, staging, committing, and the manifest.

A version is built in a hidden staging directory (`.<version>.partial`) and moved
into place only after its manifest is written, so a version with a manifest is
always complete. What a killed run leaves (a staging directory, or on an object
store a version directory the manifest never reached) is reported and removed by
the next run. Paths may be local or `gs://...`. One run at a time works on a dataset
(`infra/lock.py`), and a commit never replaces an existing version without `--overwrite`.

`manifest.json` holds only what the inputs and config determine, so two runs of the
same config give the same bytes; wall-clock facts go into `run.json` beside it.
"""

from __future__ import annotations

import json
import logging
import os
import re

from apache_beam.io.filesystems import FileSystems

from infra import storage
from infra.writers import write_json

MANIFEST = "manifest.json"
DOCUMENTS_DIR = "documents"
RUN_INFO = "run.json"
# Whole names only (fullmatch: `$` lets a trailing newline through), of ASCII digits (`\d` alone takes any script's).
VERSION_PATTERN = re.compile(r"v(\d{4,})", re.ASCII)
STAGING_PATTERN = re.compile(r"\.(v\d{4,})\.partial", re.ASCII)
MANIFEST_FORMAT = 1

log = logging.getLogger(__name__)


class VersionError(RuntimeError):
    """A version that cannot be created or read as asked."""


class VersionStore:
    """The versions of one dataset: `<out>/<name>/vNNNN`, on local disk or cloud storage.

    A version is complete when its `manifest.json` exists: locally the staging
    directory is renamed into place after the manifest is written; on an object store
    the manifest is the last object moved in. A `vNNNN/` without a manifest is what a
    commit cut short leaves there, and it is cleaned like a staging directory.
    """

    def __init__(self, out_root: str, name: str):
        self.dataset_dir = storage.join(storage.absolute(out_root), name)

    def path(self, version: str) -> str:
        return storage.join(self.dataset_dir, version)

    def staging(self, version: str) -> str:
        return storage.join(self.dataset_dir, f".{version}.partial")

    def next_version(self) -> str:
        taken = [int(m.group(1)) for v in self._entries() if (m := VERSION_PATTERN.fullmatch(v.lstrip(".").split(".")[0]))]
        return f"v{max(taken, default=0) + 1:04d}"

    def _entries(self) -> list[str]:
        return storage.list_children(self.dataset_dir)

    def is_complete(self, version: str) -> bool:
        return FileSystems.exists(storage.join(self.path(version), MANIFEST))

    def finish_commits(self) -> list[str]:
        """Finish the object-store commits a killed run left half done; return their versions.

        A staged manifest shows the run itself had finished, so its work is kept: objects
        at the target that the version does not hold (an overwritten version's leftovers)
        go, and the rest of the staging prefix moves in, manifest last.
        """
        if storage.is_local(self.dataset_dir):
            return []
        finished = []
        for entry in self._entries():
            match = STAGING_PATTERN.fullmatch(entry)
            staging = storage.join(self.dataset_dir, entry)
            if not match or self.is_complete(match.group(1)) or not FileSystems.exists(storage.join(staging, MANIFEST)):
                continue
            version, final = match.group(1), self.path(match.group(1))
            log.warning("finishing the commit of %s: an earlier run stopped while moving it into place", version)
            keep = {MANIFEST, RUN_INFO, *read_manifest(staging)["files"], *storage.list_files(staging)}
            stale = [f for f in storage.list_files(final) if f not in keep]
            if stale:
                FileSystems.delete([storage.join(final, f) for f in stale])
            storage.move_tree(staging, final, last=(MANIFEST,), replace=False)
            finished.append(version)
        return finished

    def clean_incomplete(self) -> list[str]:
        """Remove what killed runs left (staging directories, cut-short commits); return it.

        Locally a commit is one rename and cannot be cut short, so a local version
        directory is never removed here.
        """
        removed = []
        remote = not storage.is_local(self.dataset_dir)
        for entry in self._entries():
            cut_short = remote and VERSION_PATTERN.fullmatch(entry) and not self.is_complete(entry)
            if entry.endswith(".partial") or cut_short:
                log.warning("removing %s: an earlier run stopped before committing it", entry)
                storage.delete_tree(storage.join(self.dataset_dir, entry))
                removed.append(entry)
        return removed

    def begin(self, version: str | None, overwrite: bool) -> tuple[str, str]:
        """(version name, staging dir) for a new version."""
        version = version or self.next_version()
        check_version_name(version)
        final = self.path(version)
        if storage.is_dir(final) and not overwrite:
            raise VersionError(f"{final} already exists; pass --overwrite to replace it or pick another --dataset-version")
        staging = self.staging(version)
        storage.delete_tree(staging)
        storage.make_dirs(staging)
        return version, staging

    def commit(self, staging: str, version: str, overwrite: bool = False) -> str:
        """Move the staged version into place; an existing version goes only with `overwrite`."""
        final = self.path(version)
        if not overwrite and storage.is_dir(final):
            raise VersionError(f"{final} already exists and --overwrite was not given; it was left as it is")
        storage.move_tree(staging, final, last=(MANIFEST,))
        return final


def check_version_name(version: str) -> None:
    """A version name is `v` and four or more digits, nothing else (no newline, no path)."""
    if not VERSION_PATTERN.fullmatch(version):
        raise VersionError(f"--dataset-version: version names look like v0001 (v and four or more digits), got {version!r}")


def document_paths(version_dir: str, manifest: dict | None = None) -> list[str]:
    """The version's documents/*.parquet shards as its manifest lists them (`listed_paths`)."""
    return listed_paths(version_dir, DOCUMENTS_DIR, manifest)


def listed_paths(version_dir: str, folder: str, manifest: dict | None = None) -> list[str]:
    """The Parquet files of a data folder (documents/, rejected/) as the manifest lists them, sorted.

    Never a glob of the folder: a file the manifest does not list is not part of the
    version, and `verify` fails on it. `manifest` is the one of a run still building
    the version; otherwise the version's own is read. None listed is not an error here.
    """
    files = (manifest if manifest is not None else read_manifest(version_dir)).get("files", {})
    prefix = folder + "/"
    return [storage.join(version_dir, rel) for rel in sorted(files) if rel.startswith(prefix) and rel.endswith(".parquet")]


def read_manifest(version_dir: str) -> dict:
    path = storage.join(version_dir, MANIFEST)
    if not FileSystems.exists(path):
        raise VersionError(f"{version_dir} is not a complete dataset version (no {MANIFEST})")
    try:
        manifest = json.loads(storage.read_bytes(path))
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise VersionError(f"{path}: the manifest does not parse: {e}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
        raise VersionError(f'{path}: the manifest is not an object with a "files" object')
    return manifest


def write_manifest(version_dir: str, manifest: dict) -> None:
    """Write the manifest atomically: a reader sees the old one or the new one.

    Locally by rename; on an object store a single object appears whole when written.
    """
    final = storage.join(version_dir, MANIFEST)
    tmp = final + ".tmp" if storage.is_local(version_dir) else final
    write_json(tmp, manifest)
    if tmp != final:
        os.replace(tmp, final)


def write_run_info(version_dir: str, info: dict) -> None:
    path = storage.join(version_dir, RUN_INFO)
    runs = json.loads(storage.read_bytes(path)).get("runs", []) if FileSystems.exists(path) else []
    write_json(path, {"runs": runs + [info]})
