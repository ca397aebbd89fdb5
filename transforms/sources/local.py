"""Local source: a directory of repositories, each a plain folder or a git repository.

A git repository is read at its HEAD commit with git itself (`ls-tree` and
`cat-file --batch`), so uncommitted edits in its work tree are not part of the
dataset and the revision recorded is the commit id. A plain folder is walked in
sorted order; its revision in the snapshot is a hash of its listing and contents.

Per file: symlinks, submodules, paths that are not valid UTF-8, files over
`read.max_file_bytes` (notebooks: `read.max_notebook_bytes`, as their JSON carries their
outputs; rejected by their listed size, never read), binary files and
files that are not valid UTF-8 become `Rejected` records of stage "read". A
repository folder whose own name is not valid UTF-8 becomes one such record.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from typing import Iterator

import apache_beam as beam
from apache_beam import pvalue

from schemas.records import Rejected, RepoFile, RepoSnapshot
from transforms.base import REJECTED, TALLY, Tally
from transforms.license import detect_repo_license, is_license_candidate
from transforms.notebooks import is_notebook_path

STAGE = "read"
SNAPSHOT = "snapshot"
BINARY_SNIFF_BYTES = 8192  # a NUL byte in this prefix marks a file as binary, as git does
BAD_PATH = "not-utf8-path"  # Entry kind and reject reason of a name that is not valid UTF-8


@dataclass(frozen=True)
class RepoRef:
    """A repository to read and what the source's metadata file says about it."""

    root: str
    name: str  # folder name under root
    repo: str  # repository name recorded on the records (metadata may say owner/name)
    stars: int | None = None
    origin: str | None = None

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.name)


@dataclass(frozen=True)
class Entry:
    """One file of a repository listing, before it is read."""

    path: str
    size: int
    kind: str  # file | symlink | submodule | not-utf8-path
    blob: str | None = None  # git object id, for git repositories


def list_repos(root: str, metadata_path: str | None = None) -> list[RepoRef]:
    """The repositories under `root`, sorted, with stars/origin from the metadata file."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"local source {root!r} is not a directory")
    metadata = {}
    if metadata_path:
        with open(metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
    refs = []
    for name in sorted(os.listdir(root)):
        if name.startswith(".") or not os.path.isdir(os.path.join(root, name)):
            continue
        meta = metadata.get(name, {})
        refs.append(
            RepoRef(root=root, name=name, repo=meta.get("repo", name), stars=meta.get("stars"), origin=meta.get("origin"))
        )
    return refs


def shown_path(raw: str | bytes) -> tuple[str, bool]:
    """(the path as text, with U+FFFD for bytes that are not UTF-8; whether it was valid UTF-8).

    os.walk hands undecodable bytes over as lone surrogates, which no record, id or
    Parquet file can hold.
    """
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    text = data.decode("utf-8", "replace")
    return text, text.encode("utf-8") == data


def is_git_repo(path: str) -> bool:
    return os.path.exists(os.path.join(path, ".git"))


class GitReader:
    """Reads a repository's files at HEAD through one `git cat-file --batch` process."""

    def __init__(self, path: str):
        self.path = path
        self.revision = self._git("rev-parse", "HEAD").strip()
        self._proc: subprocess.Popen | None = None

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", self.path, *args], check=True, capture_output=True, text=True, encoding="utf-8"
        ).stdout

    def entries(self) -> list[Entry]:
        out = subprocess.run(
            ["git", "-C", self.path, "ls-tree", "-r", "-z", "--long", "--full-tree", self.revision],
            check=True,
            capture_output=True,
        ).stdout
        entries = []
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, path = item.split(b"\t", 1)
            mode, otype, blob, size = meta.split()
            path_str, valid = shown_path(path)
            if not valid:
                entries.append(Entry(path_str, 0, BAD_PATH))
            elif otype == b"commit":
                entries.append(Entry(path_str, 0, "submodule"))
            elif mode == b"120000":
                entries.append(Entry(path_str, int(size), "symlink", blob.decode()))
            else:
                entries.append(Entry(path_str, int(size), "file", blob.decode()))
        return sorted(entries, key=lambda e: e.path)

    def read(self, entry: Entry) -> bytes:
        if self._proc is None:
            self._proc = subprocess.Popen(
                ["git", "-C", self.path, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        self._proc.stdin.write(entry.blob.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        size = int(header[2])
        data = self._proc.stdout.read(size)
        self._proc.stdout.read(1)  # the newline after the object
        return data

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait()
            self._proc = None


class FolderReader:
    """Reads a plain folder's files (no git), skipping any `.git` directory."""

    revision = None

    def __init__(self, path: str):
        self.path = path

    def entries(self) -> list[Entry]:
        entries = []
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames[:] = sorted(d for d in dirnames if d != ".git" and not os.path.islink(os.path.join(dirpath, d)))
            for d in os.listdir(dirpath):
                if os.path.islink(os.path.join(dirpath, d)) and os.path.isdir(os.path.join(dirpath, d)):
                    filenames.append(d)
            for name in filenames:
                full = os.path.join(dirpath, name)
                rel, valid = shown_path(os.path.relpath(full, self.path).replace(os.sep, "/"))
                st = os.lstat(full)
                kind = BAD_PATH if not valid else "symlink" if os.path.islink(full) else "file"
                entries.append(Entry(rel, st.st_size, kind))
        return sorted(entries, key=lambda e: e.path)

    def read(self, entry: Entry) -> bytes:
        with open(os.path.join(self.path, entry.path), "rb") as f:
            return f.read()

    def close(self) -> None:
        pass


def decode_file(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for a UTF-8 text file, else (None, reason)."""
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"not-utf8:{e.start}"


def read_repo(
    ref: RepoRef, max_file_bytes: int, max_notebook_bytes: int | None = None
) -> Iterator[RepoFile | Rejected | RepoSnapshot]:
    """Every file of one repository as a RepoFile or a Rejected, then its snapshot.

    Notebooks may be up to `max_notebook_bytes` (default: `max_file_bytes`).
    """
    repo, valid = shown_path(ref.repo)
    if not valid:
        detail = "the repository folder's name is not valid UTF-8"
        yield Rejected(RepoFile.make_id("local", repo, "", None), STAGE, BAD_PATH, detail, "local", repo, "")
        return
    reader = GitReader(ref.path) if is_git_repo(ref.path) else FolderReader(ref.path)
    try:
        entries = reader.entries()
        license_texts = {}
        for entry in entries:
            if entry.kind == "file" and is_license_candidate(entry.path) and entry.size <= max_file_bytes:
                text, _ = decode_file(reader.read(entry))
                if text is not None:
                    license_texts[entry.path] = text
        license = detect_repo_license(license_texts)
        tree = hashlib.sha1()
        kept = 0
        for entry in entries:
            file_id = RepoFile.make_id("local", ref.repo, entry.path, reader.revision)
            where = dict(id=file_id, source="local", repo=ref.repo, path=entry.path)
            if entry.kind != "file":
                detail = "not valid UTF-8, shown with U+FFFD" if entry.kind == BAD_PATH else "not a regular file"
                yield Rejected(stage=STAGE, reason=entry.kind, detail=detail, **where)
                continue
            limit = max_notebook_bytes if max_notebook_bytes and is_notebook_path(entry.path) else max_file_bytes
            if entry.size > limit:
                yield Rejected(stage=STAGE, reason="too-large", detail=f"{entry.size} bytes > {limit}", **where)
                continue
            data = reader.read(entry)
            tree.update(f"{entry.path}\0{hashlib.sha1(data).hexdigest()}\0".encode("utf-8", "replace"))
            text, problem = decode_file(data)
            if problem:
                reason, _, detail = problem.partition(":")
                yield Rejected(stage=STAGE, reason=reason, detail=f"at byte {detail}" if detail else "", **where)
                continue
            kept += 1
            yield RepoFile(
                id=file_id,
                source="local",
                repo=ref.repo,
                path=entry.path,
                revision=reader.revision,
                license=license,
                stars=ref.stars,
                size=len(data),
                content=text,
                origin=ref.origin,
            )
        revision = reader.revision or "tree:" + tree.hexdigest()
        yield RepoSnapshot("local", ref.repo, revision, license, ref.stars, kept)
    finally:
        reader.close()


class ReadRepoFn(beam.DoFn):
    """Reads one repository per element; files out, rejects and snapshot tagged."""

    def __init__(self, max_file_bytes: int, max_notebook_bytes: int | None = None):
        self.max_file_bytes = max_file_bytes
        self.max_notebook_bytes = max_notebook_bytes

    def setup(self):
        self.tally = Tally(STAGE)

    def process(self, ref: RepoRef):
        try:
            for out in read_repo(ref, self.max_file_bytes, self.max_notebook_bytes):
                if isinstance(out, RepoSnapshot):
                    yield pvalue.TaggedOutput(SNAPSHOT, out)
                    continue
                self.tally.add_in()
                yield self.tally.route(out)
        except (OSError, subprocess.CalledProcessError) as e:
            self.tally.add_in()
            rid = RepoFile.make_id("local", ref.repo, "", None)
            yield self.tally.route(Rejected(rid, STAGE, "repo-unreadable", str(e)[:500], "local", ref.repo, ""))

    def finish_bundle(self):
        yield from self.tally.drain()


class ReadLocalRepos(beam.PTransform):
    """Local repositories → RepoFile (main, "kept"), Rejected, tallies and repository snapshots."""

    def __init__(self, repos: list[RepoRef], max_file_bytes: int, max_notebook_bytes: int | None = None):
        super().__init__()
        self.repos = repos
        self.max_file_bytes = max_file_bytes
        self.max_notebook_bytes = max_notebook_bytes

    def expand(self, pbegin):
        return (
            pbegin
            | "ListRepos" >> beam.Create(self.repos)
            | "SpreadRepos" >> beam.Reshuffle()
            | "ReadRepoFiles"
            >> beam.ParDo(ReadRepoFn(self.max_file_bytes, self.max_notebook_bytes)).with_outputs(
                REJECTED, TALLY, SNAPSHOT, main="kept"
            )
        )
