"""Listing and reading a plain folder so that the listing is the ground truth.

Every entry under a folder (file, link, FIFO, socket, device, a folder that cannot be
listed, a name that is not UTF-8, a nested `.git`) is one `Entry` with its own kind;
readable folders are only containers. The walk is iterative, so no depth of nesting
exhausts the stack, and it never follows a link. Every path is opened one component at a
time, each relative to the last with O_NOFOLLOW (so no path length limit applies and no
link is followed anywhere). Only regular files are opened, with O_NONBLOCK, and the file
opened must be the very inode that was listed, so nothing outside the folder is read and
nothing blocks (a FIFO swapped in after the
listing opens at once and is refused). A read is capped: a file that grew past the
limit after it was listed is cut off and rejected, never kept whole.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from infra.storage import entry_kind as kind_of  # the kind of an lstat mode that is not a folder

BAD_PATH = "not-utf8-path"  # Entry kind and reject reason of a name that is not valid UTF-8
UNREADABLE = "unreadable"  # a file whose metadata or bytes could not be read
UNREADABLE_FOLDER = "unreadable-folder"  # a folder whose listing failed: one record, with the OS's reason
GIT_METADATA = "git-metadata"  # a `.git` inside a plain folder: git's storage, not the project's files
READ_BLOCK = 1 << 20
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class EntryUnreadable(Exception):
    """One entry could not be read; the message says why (the OS's or git's own words)."""


@dataclass(frozen=True)
class Entry:
    """One entry of a repository listing, before it is read."""

    path: str  # relative, `/`-separated, valid UTF-8 (U+FFFD where the name was not)
    size: int  # -1: unknown
    kind: str  # file | symlink | submodule | fifo | socket | device | not-utf8-path | unreadable | ...
    blob: str | None = None  # git object id, for git repositories
    raw: str | None = None  # the path as the OS spells it (surrogate-escaped), for plain folders
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) at listing: the file read must be this one
    detail: str = ""

    @property
    def id_path(self) -> str:
        """The path as the OS or git spells it (surrogate-escaped): names that differ only in
        bytes that are not UTF-8 show alike with U+FFFD, and must not share a record id."""
        return self.raw if self.raw is not None else self.path


def shown_path(raw: str | bytes) -> tuple[str, bool]:
    """(the path as text, with U+FFFD for bytes that are not UTF-8; whether it was valid UTF-8).

    The OS hands undecodable bytes over as lone surrogates, which no record, id or
    Parquet file can hold.
    """
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    text = data.decode("utf-8", "replace")
    return text, text.encode("utf-8") == data


def os_reason(error: OSError) -> str:
    return f"{error.strerror or type(error).__name__} (errno {error.errno})" if error.errno else str(error)


def _entry(rel: str, kind: str, size: int = 0, inode=None, detail: str = "") -> Entry:
    path, valid = shown_path(rel)
    if not valid:
        return Entry(path, size, BAD_PATH, raw=rel, detail="not valid UTF-8, shown with U+FFFD")
    return Entry(path, size, kind, raw=rel, inode=inode, detail=detail)


DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def open_beneath(top: str, rel: str, flags: int) -> int:
    """Open `rel` under `top` one component at a time, each relative to the last, following no link.

    So nothing outside `top` is opened whatever was swapped in after the listing, and
    a path longer than the OS's limit (deep nesting, long names) opens like any other.
    """
    fd = os.open(top, DIR_FLAGS)
    try:
        *folders, last = rel.split("/") if rel else [os.curdir]
        for name in folders:
            inner = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(last, flags, dir_fd=fd)
    finally:
        os.close(fd)


def list_folder(top: str, rel_dir: str) -> list[tuple[str, os.stat_result | OSError]]:
    """(name, lstat or the error getting it) of every entry of one folder, sorted by name."""
    fd = open_beneath(top, rel_dir, DIR_FLAGS)
    try:
        found = []
        for name in sorted(os.listdir(fd)):
            try:
                found.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
            except OSError as e:
                found.append((name, e))
        return found
    finally:
        os.close(fd)


def walk_folder(top: str) -> list[Entry]:
    """Every entry under `top`, sorted by path, found without recursion and without following links."""
    entries = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            children = list_folder(top, rel_dir)
        except OSError as e:
            entries.append(_entry(rel_dir, UNREADABLE_FOLDER, detail=f"cannot list this folder: {os_reason(e)}"))
            continue
        for name, st in children:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if isinstance(st, OSError):
                entries.append(_entry(rel, UNREADABLE, detail=f"cannot stat: {os_reason(st)}"))
            elif name == ".git":
                entries.append(_entry(rel, GIT_METADATA, detail="git's storage inside a plain folder is not read"))
            elif stat.S_ISDIR(st.st_mode):
                pending.append(rel)
            else:
                entries.append(_entry(rel, kind_of(st.st_mode), st.st_size, (st.st_dev, st.st_ino)))
    return sorted(entries, key=lambda e: e.path)


def read_regular_file(top: str, rel: str, inode: tuple[int, int] | None, limit: int) -> bytes:
    """At most `limit + 1` bytes of the regular file `rel` under `top`, which must still be the inode listed."""
    try:
        fd = open_beneath(top, rel, OPEN_FLAGS)
    except OSError as e:
        raise EntryUnreadable(f"cannot open: {os_reason(e)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise EntryUnreadable(f"is now a {kind_of(st.st_mode)}, not the regular file listed")
        if inode is not None and (st.st_dev, st.st_ino) != inode:
            raise EntryUnreadable("was replaced by another file after it was listed")
        chunks, got = [], 0
        while got <= limit:
            block = os.read(fd, min(READ_BLOCK, limit + 1 - got))
            if not block:
                break
            chunks.append(block)
            got += len(block)
        return b"".join(chunks)
    except OSError as e:
        raise EntryUnreadable(f"read failed: {os_reason(e)}") from None
    finally:
        os.close(fd)


class FolderReader:
    """Reads a plain folder's files (no git): the listing of `walk_folder`, then capped reads."""

    revision = None

    def __init__(self, path: str):
        self.path = path

    def entries(self) -> list[Entry]:
        return walk_folder(self.path)

    def read(self, entry: Entry, limit: int) -> bytes:
        return read_regular_file(self.path, entry.raw, entry.inode, limit)

    def close(self) -> None:
        pass
