"""Repository archives (tar.gz) read in memory, member by member, into RepoFile records.

Nothing is extracted to disk. GitHub and GitLab archives hold one top directory
(`owner-repo-sha7/`, `repo-sha-sha/`), which is stripped from every path. Each member
becomes a RepoFile or a Rejected of stage "read":

    unsafe-path   an absolute path or one with `..`
    not-utf8-path a name that is not valid UTF-8 (recorded with U+FFFD)
    outside-root  a member outside the archive's top directory
    duplicate-path  a second entry with a path already read
    symlink, hardlink, device      not a regular file
    too-large     over read.max_file_bytes, or read.max_notebook_bytes for a notebook (skipped unread)
    binary, not-utf8               as for local files (`local.decode_file`)

The whole archive is bounded by its uncompressed bytes (a decompression bomb stops at
the limit) and its member count. Reaching either, or a truncated or corrupt stream,
rejects the rest of the repository with one record (path "") saying why; the files
read before it are kept.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import posixpath
import tarfile
import zlib
from typing import Iterator

from schemas import stage_names
from schemas.records import Rejected, RepoFile, RepoSnapshot
from schemas.sources_config import ArchiveLimits
from transforms.cleaning.license import detect_repo_license, is_license_candidate
from transforms.sources.file_decoding import decode_file, size_limit
from transforms.sources.local.source import BAD_PATH, shown_path


@dataclasses.dataclass(frozen=True)
class RepoInfo:
    """What every file of one repository at one revision shares; makes its records."""

    source: str  # github | gitlab | bigquery
    repo: str
    revision: str | None
    license: str | None
    stars: int | None
    origin: str | None

    def file_id(self, path: str) -> str:
        return RepoFile.make_id(self.source, self.repo, path, self.revision)

    def reject(self, path: str, reason: str, detail: str = "", id_path: str | None = None) -> Rejected:
        """`id_path`: the name as the archive spells it, where `path` shows it with U+FFFD."""
        return Rejected(self.file_id(id_path or path), stage_names.READ, reason, detail, self.source, self.repo, path)

    def file(self, path: str, data: bytes) -> RepoFile | Rejected:
        """A file's bytes as a RepoFile, or a Rejected when they are binary or not UTF-8."""
        text, problem = decode_file(data)
        if problem:
            reason, _, at = problem.partition(":")
            return self.reject(path, reason, f"at byte {at}" if at else "")
        return RepoFile(
            id=self.file_id(path),
            source=self.source,
            repo=self.repo,
            path=path,
            revision=self.revision,
            license=self.license,
            stars=self.stars,
            size=len(data),
            content=text,
            origin=self.origin,
        )

    def snapshot(self, files: int) -> RepoSnapshot:
        return RepoSnapshot(self.source, self.repo, self.revision, self.license, self.stars, files)


class ArchiveStopped(Exception):
    """Reading stopped before the archive's end; the rest of the repository is rejected."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Member:
    """One archive entry: a readable file (`data` set) or a problem (`reason` set)."""

    path: str
    data: bytes | None = None
    reason: str | None = None
    detail: str = ""
    id_path: str | None = None  # the name as the archive spells it (surrogate-escaped), when not UTF-8


class _BoundedReader(io.RawIOBase):
    """Decompressed bytes of the archive, refusing to go past `limit` (decompression bombs)."""

    def __init__(self, data: bytes, limit: int):
        self._gzip = gzip.GzipFile(fileobj=io.BytesIO(data))
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._gzip.read(size)
        self.count += len(chunk)
        if self.count > self._limit:
            raise ArchiveStopped("archive-too-large", f"more than {self._limit} bytes uncompressed")
        return chunk


def iter_members(
    data: bytes, limits: ArchiveLimits, max_file_bytes: int, max_notebook_bytes: int | None = None
) -> Iterator[Member]:
    """The archive's files in stored order; raises ArchiveStopped where reading must stop."""
    reader = _BoundedReader(data, limits.max_uncompressed_bytes)
    seen = 0
    root = None
    paths = set()
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for info in tar:
                seen += 1
                if seen > limits.max_members:
                    raise ArchiveStopped("too-many-members", f"more than {limits.max_members} entries")
                name, valid = shown_path(info.name)
                parts = name.split("/")
                if name.startswith("/") or ".." in parts:
                    yield Member(name, reason="unsafe-path", detail="absolute or parent path in archive")
                    continue
                root = root if root is not None else parts[0]
                if parts[0] != root:
                    yield Member(name, reason="outside-root", detail=f"not under the archive's top directory {root}/")
                    continue
                path = posixpath.normpath("/".join(parts[1:])) if len(parts) > 1 else ""
                if info.isdir() or path in ("", "."):
                    continue
                if not valid:  # names alike but for their bytes that are not UTF-8 must not share an id
                    raw = posixpath.normpath("/".join(info.name.split("/")[1:]))
                    yield Member(path, reason=BAD_PATH, detail="not valid UTF-8, shown with U+FFFD", id_path=raw)
                    continue
                if path in paths:
                    yield Member(path, reason="duplicate-path", detail="a second entry with this path")
                    continue
                paths.add(path)
                if info.issym():
                    yield Member(path, reason="symlink", detail="not a regular file")
                elif info.islnk():
                    yield Member(path, reason="hardlink", detail="not a regular file")
                elif not info.isreg():
                    yield Member(path, reason="device", detail="device, fifo or other special file")
                elif info.size > (limit := size_limit(path, max_file_bytes, max_notebook_bytes)):
                    yield Member(path, reason="too-large", detail=f"{info.size} bytes > {limit}")
                else:
                    yield Member(path, data=tar.extractfile(info).read())
    except (EOFError, tarfile.ReadError) as e:
        raise ArchiveStopped("truncated-archive", f"after {seen} entries: {e}") from None
    except (zlib.error, gzip.BadGzipFile, tarfile.TarError) as e:
        raise ArchiveStopped("corrupt-archive", f"after {seen} entries: {e}") from None
    except (ValueError, OSError, UnicodeError) as e:  # what else tarfile raises on a header it cannot parse
        raise ArchiveStopped("corrupt-archive", f"after {seen} entries: {type(e).__name__}: {e}") from None


def license_in_archive(data: bytes, limits: ArchiveLimits, max_file_bytes: int) -> str | None:
    """The license named by the archive's root license/README files (for when the API has none)."""
    texts = {}
    try:
        for member in iter_members(data, limits, max_file_bytes):
            if member.data is not None and is_license_candidate(member.path):
                text, _ = decode_file(member.data)
                if text is not None:
                    texts[member.path] = text
    except ArchiveStopped:
        pass  # what was read still counts; read_archive reports the problem
    return detect_repo_license(texts)


def read_archive(
    info: RepoInfo, data: bytes, limits: ArchiveLimits, max_file_bytes: int, max_notebook_bytes: int | None = None
) -> Iterator:
    """Every member as a RepoFile or Rejected, one Rejected for an unread rest, then the snapshot."""
    if info.license is None:
        info = dataclasses.replace(info, license=license_in_archive(data, limits, max_file_bytes))
    kept = 0
    try:
        for member in iter_members(data, limits, max_file_bytes, max_notebook_bytes):
            if member.reason:
                yield info.reject(member.path, member.reason, member.detail, member.id_path)
                continue
            record = info.file(member.path, member.data)
            kept += isinstance(record, RepoFile)
            yield record
    except ArchiveStopped as e:
        yield info.reject("", e.reason, f"the rest of the repository: {e.detail}")
    yield info.snapshot(kept)
