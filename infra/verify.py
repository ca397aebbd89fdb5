"""`code-corpus verify`: a version's files re-hashed against its manifest, as `git fsck` checks a repository.

The manifest records every output file with its sha256 and size. A version whose files
do not match (missing, truncated, replaced by another run's) is corrupt even when its
manifest reads well, so `run` verifies each version it writes before it reports success.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from infra import storage
from infra.version import MANIFEST, RUN_INFO, read_manifest

HASH_BLOCK = 8 << 20
UNLISTED_OK = (MANIFEST, RUN_INFO, "report.html")  # written beside the manifest, never listed in it


@dataclass
class Verification:
    """What `verify_version` found: problems make a version fail; unlisted files are only noted."""

    version_dir: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"{self.version_dir}: {'ok' if self.ok else 'CORRUPT'}, {self.checked} files checked against {MANIFEST}"]
        lines += [f"  {p}" for p in self.problems]
        lines += [f"  note: {name} is not in the manifest" for name in self.unlisted]
        return "\n".join(lines)


def file_sha256(path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with storage.open_file(path) as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def verify_version(version_dir: str) -> Verification:
    """Re-hash every file the manifest lists; a missing manifest is a VersionError."""
    manifest = read_manifest(version_dir)
    result = Verification(version_dir)
    on_disk = set(storage.list_files(version_dir))
    for rel, info in sorted(manifest.get("files", {}).items()):
        result.checked += 1
        if rel not in on_disk:
            result.problems.append(f"missing: {rel}")
            continue
        try:
            sha, size = file_sha256(storage.join(version_dir, rel))
        except OSError as e:
            result.problems.append(f"unreadable: {rel}: {e}")
            continue
        if size != info.get("bytes", size) or sha != info.get("sha256"):
            result.problems.append(
                f"changed: {rel}: {size} bytes, sha256 {sha[:12]}, manifest says "
                f"{info.get('bytes')} bytes, sha256 {str(info.get('sha256'))[:12]}"
            )
    listed = set(manifest.get("files", {}))
    result.unlisted = sorted(n for n in on_disk - listed if n not in UNLISTED_OK and not n.startswith("."))
    return result
