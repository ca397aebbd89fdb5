"""Local source: a directory of repositories, each a plain folder or a git repository.

A repository is listed on one worker and read in parts of about PART_BYTES, spread over
the workers, so one large repository does not keep one worker busy while the rest wait.

A git repository (a folder holding a `.git` folder) is read at its HEAD commit with git
itself (`ls-tree` and `cat-file --batch`), so uncommitted edits in its work tree are not
part of the dataset and the revision recorded is the commit id. A plain folder is walked
(`local_tree`), in sorted order; its revision in the snapshot is a hash of its listing
and contents.

The listing is the ground truth: every entry under the source root is exactly one
record, kept or rejected with its own reason, and a fault is isolated to the entry where
it happens. At the root, an entry that is not a plain folder (a link, a file, a hidden
name) is one rejection with path "". In a repository, symlinks, submodules, FIFOs,
sockets, devices, folders that cannot be listed, paths that are not valid UTF-8, files
over `read.max_file_bytes` (by their listed size, unread, or by the capped read of a file
that grew), binary files and files that are not valid UTF-8 are rejected, as is any file
git or the OS fails to hand over, with git's or the OS's own reason. Notebooks may be up to
`read.max_notebook_bytes`, as their JSON carries their outputs (judged after conversion).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import subprocess
from dataclasses import dataclass
from typing import Iterator

import apache_beam as beam

from infra import storage
from schemas import stage_names
from schemas.errors import ConfigError
from schemas.records import Rejected, RepoFile, RepoSnapshot
from schemas.sources_config import check_repo_metadata
from transforms.base import ApplyStage
from transforms.cleaning.license import detect_repo_license, is_license_candidate
from transforms.record_fn import Extra, RecordFn
from transforms.sources.file_decoding import decode_file, size_limit
from transforms.sources.local.folders import (
    BAD_PATH,
    UNREADABLE,
    Entry,
    EntryUnreadable,
    FolderReader,
    kind_of,
    os_reason,
    shown_path,
)
from transforms.sources.local.watchdog import Watchdog
from transforms.stage_outputs import StageOutputs

__all__ = ["BAD_PATH", "shown_path", "list_repos", "read_repo", "ReadLocalRepos"]

SNAPSHOT = "snapshot"  # the extra of RepoSnapshots a source gives besides its files
REPO_UNREADABLE = "repo-unreadable"
GIT_TIMEOUT_SECONDS = 600.0  # default of read.git_timeout_seconds: the longest one git call may take
GIT_DETAIL_CHARS = 500
PART_BYTES = 2_000_000  # a repository is read in parts of about this many bytes of files...
PART_ENTRIES = 2_000  # ...or this many entries, whichever comes first
PARTS = "parts"  # the extra of ListRepoPartsFn: the parts to read
TREES = "trees"  # the extra of ReadRepoPartFn: each part's PartTree, for its repository's snapshot


@dataclass(frozen=True)
class RepoRef:
    """An entry of a source root: a repository to read, or (kind != "folder") one to reject."""

    root: str
    name: str  # entry name under root (surrogate-escaped where not UTF-8)
    repo: str  # repository name recorded on the records (metadata may say owner/name)
    stars: int | None = None
    origin: str | None = None
    kind: str = "folder"  # folder | hidden | symlink | file | fifo | ... : what else sits at the root
    detail: str = ""

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.name)


def root_entry_kind(root: str, name: str) -> tuple[str, str]:
    """(kind, detail) of one entry at a source root: "folder" for a repository to read."""
    try:
        mode = os.lstat(os.path.join(root, name)).st_mode
    except OSError as e:
        return UNREADABLE, f"cannot stat: {os_reason(e)}"
    if name.startswith("."):
        return "hidden", "a hidden entry at the source root is not a repository"
    if stat.S_ISDIR(mode):
        return "folder", ""
    kind = kind_of(mode)
    return kind, f"a {kind} at the source root is not a repository folder (links are never followed)"


def list_repos(root: str, metadata_path: str | None = None) -> list[RepoRef]:
    """Every entry under `root`, sorted, with stars/origin/repo from the metadata file (checked)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"local source {root!r} is not a directory")
    metadata = {}
    if metadata_path:
        try:
            with open(metadata_path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{metadata_path}: not a readable JSON file: {e}") from None
        metadata = check_repo_metadata(data, metadata_path)
    refs = []
    for name in sorted(os.listdir(root)):
        kind, detail = root_entry_kind(root, name)
        meta = metadata.get(name, {}) if kind == "folder" else {}
        refs.append(RepoRef(root, name, meta.get("repo", name), meta.get("stars"), meta.get("origin"), kind=kind, detail=detail))
    check_metadata_keys(metadata, refs, metadata_path, root)
    return refs


def check_metadata_keys(metadata: dict, refs: list[RepoRef], metadata_path: str | None, root: str) -> None:
    """Every metadata key must name a repository folder: a misspelt one would silently lose its stars."""
    kinds = {ref.name: ref.kind for ref in refs}
    for key in sorted(metadata):
        kind = kinds.get(key)
        if kind != "folder":
            found = f"is a {kind} entry, not a repository folder" if kind else "names no entry"
            raise ConfigError(f"{metadata_path}: [{key!r}] {found} in {root!r}; fix the key or remove it")


def is_git_repo(path: str) -> bool:
    """A folder holding a `.git` folder (not a link, not a `gitdir:` file pointing elsewhere)."""
    try:
        return stat.S_ISDIR(os.lstat(os.path.join(path, ".git")).st_mode)
    except OSError:
        return False


class GitReader:
    """Reads a repository's files at HEAD through one `git cat-file --batch` process.

    Every git call has `timeout` seconds: a listing that takes longer rejects the
    repository; an object read that takes longer (git blocked on a FIFO in `.git/objects`,
    a hung network mount) kills git, rejects that file, and every later file of the
    repository is rejected unread, so a hung git costs one timeout, not one per file.
    """

    def __init__(self, path: str, timeout: float = GIT_TIMEOUT_SECONDS, revision: str | None = None):
        """`revision`: the commit whose blobs are read (default: HEAD's, asked of git)."""
        self.path = path
        self.timeout = timeout
        self.timed_out = False
        self.revision = revision or self._git("rev-parse", "--verify", "HEAD").decode("utf-8", "replace").strip()
        self._proc: subprocess.Popen | None = None
        self._watchdog: Watchdog | None = None

    def _git(self, *args: str) -> bytes:
        """A git command's output; its failure as EntryUnreadable carrying git's own message."""
        command = ["git", "-C", self.path, *args]
        try:
            done = subprocess.run(command, capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise EntryUnreadable(f"git {args[0]} did not finish in {self.timeout:g}s (read.git_timeout_seconds)") from None
        except OSError as e:
            raise EntryUnreadable(f"git {args[0]}: {os_reason(e)}") from None
        if done.returncode:
            said = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
            raise EntryUnreadable(f"git {args[0]}: {said}"[:GIT_DETAIL_CHARS])
        return done.stdout

    def entries(self) -> list[Entry]:
        out = self._git("ls-tree", "-r", "-z", "--long", "--full-tree", self.revision)
        entries = []
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, path = item.split(b"\t", 1)
            mode, otype, blob, size = meta.split()
            path_str, valid = shown_path(path)
            size = int(size) if size.isdigit() else -1  # git prints "BAD" for a blob it cannot find
            if not valid:
                raw = path.decode("utf-8", "surrogateescape")
                entries.append(Entry(path_str, 0, BAD_PATH, raw=raw, detail="not valid UTF-8, shown with U+FFFD"))
            elif otype == b"commit":
                entries.append(Entry(path_str, 0, "submodule", detail="a submodule is another repository"))
            elif mode == b"120000":
                entries.append(Entry(path_str, size, "symlink", blob.decode()))
            else:
                entries.append(Entry(path_str, size, "file", blob.decode()))
        return sorted(entries, key=lambda e: e.path)

    def read(self, entry: Entry, limit: int) -> bytes:
        """At most `limit + 1` bytes of the blob, within the timeout; a missing object is this entry's fault alone."""
        if self.timed_out:
            raise EntryUnreadable(f"not read: git cat-file did not answer in {self.timeout:g}s for an earlier file")
        if self._proc is None:
            self._proc = subprocess.Popen(
                ["git", "-C", self.path, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            self._watchdog = Watchdog(self.timeout, self._expire)
        try:
            with self._watchdog:
                return self._read_blob(entry, limit)
        except EntryUnreadable:
            if not self.timed_out:
                raise
            self.close()
            raise EntryUnreadable(f"git cat-file did not answer in {self.timeout:g}s (read.git_timeout_seconds)") from None

    def _expire(self) -> None:
        """Git took too long: it is killed, so the blocked read returns."""
        self.timed_out = True
        proc = self._proc
        if proc is not None:
            proc.kill()

    def _read_blob(self, entry: Entry, limit: int) -> bytes:
        try:
            self._proc.stdin.write(entry.blob.encode() + b"\n")
            self._proc.stdin.flush()
            header = self._proc.stdout.readline().split()
            if len(header) != 3:
                said = b" ".join(header).decode("utf-8", "replace") or "no answer"
                raise EntryUnreadable(f"git cat-file: {said}")
            remaining = int(header[2])
            data = self._proc.stdout.read(min(remaining, limit + 1))
            remaining -= len(data)
            while remaining > 0:  # skip the rest of an over-long blob without holding it
                skipped = self._proc.stdout.read(min(remaining, 1 << 20))
                if not skipped:
                    raise OSError("git cat-file stopped in the middle of an object")
                remaining -= len(skipped)
            self._proc.stdout.read(1)  # the newline after the object
            return data
        except (OSError, ValueError) as e:
            self.close()  # the next entry starts a fresh process
            raise EntryUnreadable(f"git cat-file failed: {e}") from None

    def close(self) -> None:
        if self._watchdog is not None:
            watchdog, self._watchdog = self._watchdog, None
            watchdog.stop()
        if self._proc is not None:
            proc, self._proc = self._proc, None
            proc.kill()  # it holds no state worth a clean exit; a wedged one must not hang the worker
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()


def repo_rejection(ref: RepoRef, reason: str, detail: str) -> Rejected:
    """The one record of a root entry that is not read (or a repository that cannot be listed)."""
    repo, _ = shown_path(ref.repo)  # the id hashes the name as the OS spells it, so each folder gets its own
    return Rejected(
        RepoFile.make_id("local", ref.repo, "", None), stage_names.READ, reason, detail[:GIT_DETAIL_CHARS], "local", repo, ""
    )


@dataclass(frozen=True)
class Limits:
    """The read limits: file and notebook sizes (read.max_file_bytes, read.max_notebook_bytes), git's timeout,
    and the size of the parts a repository is read in."""

    max_file_bytes: int
    max_notebook_bytes: int | None = None
    git_timeout: float = GIT_TIMEOUT_SECONDS
    part_bytes: int = PART_BYTES

    def of(self, path: str) -> int:
        return size_limit(path, self.max_file_bytes, self.max_notebook_bytes)


@dataclass(frozen=True)
class RepoPart:
    """Some of one listed repository's entries, read as one unit of work.

    A repository is split into parts of about PART_BYTES, so one large repository is read
    (and cleaned) by several workers at once instead of keeping one busy after the rest finish.
    """

    ref: RepoRef
    revision: str | None  # the commit listed (git), or None (a plain folder)
    license: str | None
    index: int
    count: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class PartTree:
    """What a read part adds to its repository's snapshot: its share of the tree hash, and the files it kept
    (without the part's listing, which the snapshot does not need)."""

    snapshot: RepoSnapshot  # the repository's snapshot as the part knows it: revision None for a plain folder, files 0
    index: int
    count: int
    tree: bytes  # "path\0sha1(content)\0" of each entry read, in listing order
    kept: int


def open_reader(ref: RepoRef, git_timeout: float, revision: str | None = None):
    return GitReader(ref.path, git_timeout, revision) if is_git_repo(ref.path) else FolderReader(ref.path)


def list_repo(ref: RepoRef, limits: Limits) -> Iterator[Rejected | RepoPart]:
    """One repository's parts, with its license decided from its license files; or the
    one record of a root entry that is not a repository, or of a repository that cannot be listed."""
    _, valid = shown_path(ref.repo)
    if not valid:
        yield repo_rejection(ref, BAD_PATH, "the repository folder's name is not valid UTF-8")
        return
    if ref.kind != "folder":
        yield repo_rejection(ref, ref.kind, ref.detail)
        return
    try:
        reader = open_reader(ref, limits.git_timeout)
        entries = reader.entries()
    except (EntryUnreadable, OSError) as e:
        yield repo_rejection(ref, REPO_UNREADABLE, str(e))
        return
    try:
        license, _ = repo_license(reader, entries, limits)
    finally:
        reader.close()
    # A git that hung on the license files would hang on each part: one part then costs one more timeout.
    groups = [entries] if getattr(reader, "timed_out", False) else split_entries(entries, limits)
    for i, group in enumerate(groups):
        yield RepoPart(ref, reader.revision, license, i, len(groups), tuple(group))


def repo_license(reader, entries: list[Entry], limits: Limits) -> tuple[str | None, dict]:
    """The repository's license (from its license files), and what reading each of them gave."""
    license_data = {e.path: read_entry(reader, e, limits) for e in entries if e.kind == "file" and is_license_candidate(e.path)}
    texts = {path: decode_file(data)[0] for path, (data, _, _) in license_data.items() if data is not None}
    return detect_repo_license({path: text for path, text in texts.items() if text is not None}), license_data


def split_entries(entries: list[Entry], limits: Limits) -> list[list[Entry]]:
    """Consecutive entries in groups of at most `limits.part_bytes` to read (or PART_ENTRIES entries); at least one group."""
    groups, group, size = [], [], 0
    for entry in entries:
        n = entry.size if entry.kind == "file" and 0 < entry.size <= limits.of(entry.path) else 0
        if group and (size + n > limits.part_bytes or len(group) >= PART_ENTRIES):
            groups.append(group)
            group, size = [], 0
        group.append(entry)
        size += n
    groups.append(group)
    return groups


def read_part(part: RepoPart, reader, limits: Limits, license_data: dict | None = None) -> Iterator:
    """Every entry of a part as a RepoFile or a Rejected, then its PartTree."""
    ref, license_data = part.ref, license_data or {}
    tree, kept = bytearray(), 0
    for entry in part.entries:
        file_id = RepoFile.make_id("local", ref.repo, entry.id_path, part.revision)
        where = dict(id=file_id, source="local", repo=ref.repo, path=entry.path)
        data, reason, detail = license_data.get(entry.path) or read_entry(reader, entry, limits)
        if data is None:
            yield Rejected(stage=stage_names.READ, reason=reason, detail=detail[:GIT_DETAIL_CHARS], **where)
            continue
        tree += f"{entry.path}\0{hashlib.sha1(data).hexdigest()}\0".encode("utf-8", "replace")
        text, problem = decode_file(data)
        if problem:
            reason, _, at = problem.partition(":")
            yield Rejected(stage=stage_names.READ, reason=reason, detail=f"at byte {at}" if at else "", **where)
            continue
        kept += 1
        yield RepoFile(
            id=file_id,
            source="local",
            repo=ref.repo,
            path=entry.path,
            revision=part.revision,
            license=part.license,
            stars=ref.stars,
            size=len(data),
            content=text,
            origin=ref.origin,
        )
    snapshot = RepoSnapshot("local", ref.repo, part.revision, part.license, ref.stars, 0)
    yield PartTree(snapshot, part.index, part.count, bytes(tree), kept)


def read_entry(reader, entry: Entry, limits: Limits) -> tuple[bytes | None, str, str]:
    """(bytes, "", "") of a file to keep reading, or (None, reason, detail) of one to reject."""
    if entry.kind != "file":
        return None, entry.kind, entry.detail or "not a regular file"
    limit = limits.of(entry.path)
    if entry.size > limit:
        return None, "too-large", f"{entry.size} bytes > {limit}"
    try:
        data = reader.read(entry, limit)
    except EntryUnreadable as e:
        return None, UNREADABLE, str(e)
    if len(data) > limit:
        return None, "too-large", f"over {limit} bytes when read (it grew after it was listed)"
    return data, "", ""


def repo_snapshot(trees: list[PartTree]) -> RepoSnapshot:
    """A repository's snapshot from every one of its parts' trees (in any order)."""
    trees = sorted(trees, key=lambda t: t.index)
    first = trees[0]
    if [t.index for t in trees] != list(range(first.count)):
        raise ValueError(f"repository {first.snapshot.repo!r}: parts {[t.index for t in trees]} of {first.count}")
    revision = first.snapshot.revision or "tree:" + hashlib.sha1(b"".join(t.tree for t in trees)).hexdigest()
    return dataclasses.replace(first.snapshot, revision=revision, files=sum(t.kept for t in trees))


def read_entries(ref: RepoRef, reader, entries: list[Entry], max_file_bytes: int, max_notebook_bytes: int | None = None):
    """Every listed entry of one repository through one reader, then the repository's snapshot."""
    limits = Limits(max_file_bytes, max_notebook_bytes)
    license, license_data = repo_license(reader, entries, limits)
    for out in read_part(RepoPart(ref, reader.revision, license, 0, 1, tuple(entries)), reader, limits, license_data):
        yield repo_snapshot([out]) if isinstance(out, PartTree) else out


def read_part_alone(part: RepoPart, limits: Limits) -> Iterator[RepoFile | Rejected | PartTree]:
    """A part read with a reader of its own (what a worker does with each part)."""
    reader = open_reader(part.ref, limits.git_timeout, part.revision)
    try:
        yield from read_part(part, reader, limits)
    finally:
        reader.close()


def read_repo(
    ref: RepoRef, max_file_bytes: int, max_notebook_bytes: int | None = None, git_timeout: float = GIT_TIMEOUT_SECONDS
) -> Iterator[RepoFile | Rejected | RepoSnapshot]:
    """Every entry of one repository as a RepoFile or a Rejected, then its snapshot: the listing
    and each of its parts in turn, in this process (ReadLocalRepos spreads the parts over workers)."""
    limits, trees = Limits(max_file_bytes, max_notebook_bytes, git_timeout), []
    for listed in list_repo(ref, limits):
        if not isinstance(listed, RepoPart):
            yield listed
            continue
        for out in read_part_alone(listed, limits):
            if isinstance(out, PartTree):
                trees.append(out)
            else:
                yield out
    if trees:
        yield repo_snapshot(trees)


class ListRepoPartsFn(RecordFn):
    """One repository in: its parts (extra PARTS), or the one read it is when it cannot be listed."""

    stage = stage_names.READ
    extra_outputs = (PARTS,)
    each_output_is_an_input = True

    def __init__(self, limits: Limits):
        self.limits = limits

    def __call__(self, ref: RepoRef):
        for out in list_repo(ref, self.limits):
            yield Extra(PARTS, out) if isinstance(out, RepoPart) else out


class ReadRepoPartFn(RecordFn):
    """One part in; each of its entries is one read (kept or rejected); its PartTree tagged (extra TREES)."""

    stage = stage_names.READ
    extra_outputs = (TREES,)
    each_output_is_an_input = True

    def __init__(self, limits: Limits):
        self.limits = limits

    def __call__(self, part: RepoPart):
        for out in read_part_alone(part, self.limits):
            yield Extra(TREES, (out.snapshot.repo, out)) if isinstance(out, PartTree) else out


class ReadLocalRepos(beam.PTransform):
    """Local repositories → RepoFile (main, "kept"), Rejected, tallies and repository snapshots.

    Repositories are listed first and read in parts spread over the workers (only the
    listings are shuffled, never file contents); each repository's snapshot is then put
    together from its parts' trees.
    """

    def __init__(
        self,
        repos: list[RepoRef],
        max_file_bytes: int,
        max_notebook_bytes: int | None = None,
        git_timeout: float = GIT_TIMEOUT_SECONDS,
        part_bytes: int = PART_BYTES,
    ):
        super().__init__()
        self.repos = repos
        self.limits = Limits(max_file_bytes, max_notebook_bytes, git_timeout, part_bytes)

    def expand(self, pbegin):
        listed = pbegin | "Repos" >> beam.Create(self.repos) | "ListRepos" >> ApplyStage(ListRepoPartsFn(self.limits))
        parts = listed.extras[PARTS] | "SpreadParts" >> beam.Reshuffle()
        read = parts | "ReadRepoFiles" >> ApplyStage(ReadRepoPartFn(self.limits))
        snapshots = (
            read.extras[TREES]
            | "PartsByRepo" >> beam.GroupByKey()
            | "Snapshot" >> beam.MapTuple(lambda _, trees: repo_snapshot(list(trees)))
        )
        tally = (listed.tally, read.tally) | "ReadTally" >> beam.Flatten()
        return StageOutputs(read.kept, listed.rejected + read.rejected, tally, extras={SNAPSHOT: snapshots})


def check_local_sources(roots: list[str], listed: list[list[RepoRef]], out_dir: str | None) -> None:
    """Fail before any work on sources that would read a folder twice, give two folders one id, or read the output back."""
    real = [os.path.realpath(r) for r in roots]
    for i, root in enumerate(real):
        for j in range(i):
            if root == real[j] or root.startswith(real[j] + os.sep) or real[j].startswith(root + os.sep):
                same = "is the same folder as" if root == real[j] else "overlaps"
                raise ConfigError(f"sources.local[{i}].path: {roots[i]!r} {same} sources.local[{j}].path {roots[j]!r}")
        if out_dir and storage.is_local(out_dir):
            out = os.path.realpath(out_dir)
            if out == root or out.startswith(root + os.sep):
                raise ConfigError(
                    f"--out: {out_dir!r} is inside sources.local[{i}].path {roots[i]!r}; the next run would read it "
                    "back as a repository. Put the output elsewhere"
                )
    seen: dict[str, tuple[int, str]] = {}
    for i, refs in enumerate(listed):
        for ref in refs:
            if ref.kind != "folder":
                continue
            if ref.repo in seen:
                j, name = seen[ref.repo]
                raise ConfigError(
                    f"sources.local[{i}]: folders {name!r} (sources.local[{j}]) and {ref.name!r} are both repository "
                    f"{ref.repo!r}; give each its own `repo` in the metadata file"
                )
            seen[ref.repo] = (i, ref.name)
