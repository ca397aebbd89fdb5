"""`code-corpus verify`: a version's files checked against its manifest, as `git fsck` checks a repository.

The manifest records every output file with its sha256, md5, size and (Parquet) rows.
A version whose files do not match (missing, truncated, replaced by another run's, an
extra shard a later stage would read) is corrupt even when its manifest reads well, so
`run` checks each version it writes before it reports success.

Two depths. The full check re-hashes every file and reads each Parquet footer's row
count. The quick check (`--quick`, and the check after a run on cloud storage) reads no
content: one listing of the store gives each object's size and the md5 the store
computed when it was written, compared with what the writer hashed as it wrote. On
local disk, which keeps no checksums, the quick check compares sizes.

Either way, a file in the version that the manifest does not list, a manifest that lists
no files, row counts that disagree, or an entry that is not a regular file (a FIFO, a
device, a symbolic link) fails the check, naming it; no such entry is ever opened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from infra import storage
from infra.version import DOCUMENTS_DIR, MANIFEST, RUN_INFO, read_manifest

HASH_BLOCK = 8 << 20
UNLISTED_OK = (MANIFEST, RUN_INFO, "report.html")  # written beside the manifest, never listed in it
# The train stage keeps its older checkpoints and its log beside the newest checkpoint, which
# is the one the manifest lists: not a data folder any later stage reads by the manifest.
NOT_DATA = ("checkpoints/",)
ROW_TOTALS = {"documents": DOCUMENTS_DIR + "/", "rejected": "rejected/"}  # manifest key → the folder its rows are in


@dataclass
class Verification:
    """What `verify_version` found: any problem makes the version fail."""

    version_dir: str
    quick: bool = False
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        how = "sizes and stored checksums" if self.quick else "re-hashed"
        lines = [f"{self.version_dir}: {'ok' if self.ok else 'CORRUPT'}, {self.checked} files checked against {MANIFEST} ({how})"]
        lines += [f"  {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def file_sha256(path: str) -> tuple[str, int]:
    """(sha256, bytes) of a file's content, read once (the manifest's md5 is for the store's listing: not recomputed)."""
    sha256, size = hashlib.sha256(), 0
    with storage.open_file(path) as f:
        while block := f.read(HASH_BLOCK):
            sha256.update(block)
            size += len(block)
    return sha256.hexdigest(), size


def verify_version(version_dir: str, quick: bool = False, under: str = "") -> Verification:
    """Check every file the manifest lists, and that it lists every file; a missing or unreadable
    manifest is a VersionError naming it. With `under` (a folder such as "dedup/"), only the files there."""
    manifest = read_manifest(version_dir)
    files = {rel: info for rel, info in manifest.get("files", {}).items() if rel.startswith(under)}
    result = Verification(version_dir, quick)
    if not files:
        result.problems.append(f"the manifest lists no files{' under ' + under if under else ''} ({MANIFEST})")
    stored = {rel: found for rel, found in storage.list_file_metadata(version_dir).items() if rel.startswith(under)}
    for rel, info in sorted(files.items()):
        result.checked += 1
        found = stored.get(rel)
        problem = _listed_file_problem(version_dir, rel, info, found, quick)
        if problem:
            result.problems.append(problem)
    for rel in sorted(set(stored) - set(files) - set(UNLISTED_OK)):
        kind = stored[rel].kind
        what = f"unlisted: {rel}" + (f" ({kind})" if kind != "file" else "")
        if rel.startswith(NOT_DATA):
            result.notes.append(f"{what} is not in the manifest")
        else:
            result.problems.append(f"{what}: not in the manifest, so not part of the version; remove it")
    if not under:
        result.problems += row_total_problems(manifest)
    return result


def _listed_file_problem(version_dir: str, rel: str, info: dict, found, quick: bool) -> str | None:
    """What is wrong with one listed file, or None."""
    if not isinstance(info, dict):
        return f"bad entry: {rel}: the manifest's entry is not an object"
    if found is None:
        return f"missing: {rel}"
    if found.kind != "file":
        return f"not a regular file: {rel} is a {found.kind}; it was not opened"
    if quick:
        return _metadata_problem(rel, info, found)
    try:
        sha256, size = file_sha256(storage.join(version_dir, rel))
        rows = _parquet_rows(storage.join(version_dir, rel)) if "rows" in info and rel.endswith(".parquet") else None
    except Exception as e:  # OSError, a Parquet file pyarrow cannot read: the file's own fault, named
        return f"unreadable: {rel}: {e}"
    if size != info.get("bytes") or sha256 != info.get("sha256"):
        return (
            f"changed: {rel}: {size} bytes, sha256 {sha256[:12]}, manifest says "
            f"{info.get('bytes')} bytes, sha256 {str(info.get('sha256'))[:12]}"
        )
    if rows is not None and rows != info["rows"]:
        return f"rows: {rel} holds {rows} rows, the manifest says {info['rows']}"
    return None


def _metadata_problem(rel: str, info: dict, found) -> str | None:
    """Size and, where both sides have one, md5: the writer's against the store's."""
    if found.size != info.get("bytes"):
        return f"changed: {rel}: {found.size} bytes stored, the manifest says {info.get('bytes')}"
    if found.md5 and info.get("md5") and found.md5 != info["md5"]:
        return f"changed: {rel}: the store's md5 is {found.md5}, the manifest says {info['md5']}"
    return None


def _parquet_rows(path: str) -> int:
    with storage.parquet_file(path) as f:
        return f.metadata.num_rows


def row_total_problems(manifest: dict) -> list[str]:
    """The manifest's totals (documents, rejected) against the rows its file entries list."""
    files = manifest.get("files", {})
    problems = []
    for key, prefix in ROW_TOTALS.items():
        if key not in manifest:
            continue
        rows = [info.get("rows", 0) for rel, info in files.items() if rel.startswith(prefix) and isinstance(info, dict)]
        listed = sum(r for r in rows if type(r) is int)
        if listed != manifest[key] or len(rows) != sum(type(r) is int for r in rows):
            problems.append(f"counts: the manifest says {key}: {manifest[key]!r}, its {prefix} files list {listed} rows")
    return problems
