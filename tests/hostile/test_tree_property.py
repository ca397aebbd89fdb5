"""Property: over any tree of hostile entries, the local reader finishes, accounts for every entry, writes nothing.

Random trees hold regular files, symlinks inside and out of the root, FIFOs, sockets,
/dev/null- and /dev/zero-like devices (made with mknod; a link to /dev/zero where that
is not allowed), folders with no permissions, nesting over a thousand deep, 255-byte
names, names that are not UTF-8, and the same folder names again and again. Each tree
is checked against a listing made here, independently of the reader (file descriptor
by file descriptor, so no path length limit hides an entry):

- the read finishes within a bound (a FIFO or device opened for reading would block
  or never end);
- every entry the listing finds is exactly one record, a document or a rejection;
- nothing anywhere under the test's folder changed, the secret outside the root
  included, and no record holds the secret.

The tests run as root here, which ignores permissions; `test_local_faults.py` reads
folders and files with no permissions as an unprivileged user.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.records import Rejected, RepoFile, RepoSnapshot
from tests.fuzz.fuzz_settings import FUZZ
from tests.hostile.hostile_inputs import SECRET
from transforms.sources.local.source import list_repos, read_repo

MAX_FILE_BYTES = 1000
BOUND_SECONDS = 120  # far above what any tree here takes; a blocked read never ends
NAMES = ["a", "src", "pkg", "a.py", "b.py", "LICENSE", "n" * 255, "deep_" + "d" * 120, os.fsdecode(b"bad\xffname.py")]
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW

leaf = st.one_of(
    st.tuples(st.just("file"), st.sampled_from(NAMES), st.binary(max_size=1200)),
    st.tuples(st.just("text"), st.sampled_from(NAMES), st.text(max_size=300)),
    st.tuples(
        st.sampled_from(["link_in", "link_out", "link_up", "link_dev", "fifo", "socket", "null", "zero"]), st.sampled_from(NAMES)
    ),
    st.tuples(st.just("deep"), st.sampled_from(NAMES), st.integers(1, 1200)),
)
tree = st.recursive(
    st.lists(leaf, max_size=4),
    lambda children: st.lists(
        st.one_of(leaf, st.tuples(st.sampled_from(["dir", "locked"]), st.sampled_from(NAMES), children)), max_size=4
    ),
    max_leaves=12,
)
repos = st.lists(
    st.tuples(st.sampled_from(NAMES + [".hidden"]), st.sampled_from(["folder", "link_out", "fifo", "file"]), tree), max_size=4
)


def build(fd: int, nodes: list, outside: str) -> None:
    """Create `nodes` in the folder open as `fd`; a name already used in the folder is skipped."""
    used = set()
    for node in nodes:
        kind, name = node[0], node[1]
        if name in used:
            continue
        used.add(name)
        if kind in ("file", "text"):
            data = node[2] if kind == "file" else node[2].encode("utf-8", "surrogatepass")
            out = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(out, data)
            os.close(out)
        elif kind == "link_in":
            os.symlink(".", name, dir_fd=fd)
        elif kind == "link_out":
            os.symlink(os.path.join(outside, "secret.py"), name, dir_fd=fd)
        elif kind == "link_up":
            os.symlink("../../../../outside", name, dir_fd=fd)
        elif kind == "link_dev":
            os.symlink("/dev/zero", name, dir_fd=fd)
        elif kind == "fifo":
            os.mkfifo(name, dir_fd=fd)
        elif kind == "socket":
            os.mknod(name, stat.S_IFSOCK | 0o600, dir_fd=fd)
        elif kind in ("null", "zero"):
            try:
                os.mknod(name, stat.S_IFCHR | 0o666, os.makedev(1, 3 if kind == "null" else 5), dir_fd=fd)
            except PermissionError:
                os.symlink("/dev/zero", name, dir_fd=fd)
        elif kind == "deep":  # a chain d/d/d/.../<name>
            if "d" in used:
                continue
            used.add("d")
            inner = os.dup(fd)
            for _ in range(node[2]):
                os.mkdir("d", dir_fd=inner)
                nxt = os.open("d", DIR_FLAGS, dir_fd=inner)
                os.close(inner)
                inner = nxt
            leaf_fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=inner)
            os.write(leaf_fd, b"x = 1\n")
            os.close(leaf_fd)
            os.close(inner)
        else:  # dir, locked
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, DIR_FLAGS, dir_fd=fd)
            build(inner, node[2], outside)
            os.close(inner)
            if kind == "locked":
                os.chmod(name, 0, dir_fd=fd)


def listing(top: str) -> dict[str, tuple[int, int, int]]:
    """{relative path: (mode, size, mtime_ns)} of everything under `top`, by file descriptors, without recursion."""
    found = {}
    pending = [("", os.open(top, DIR_FLAGS))]
    while pending:
        rel_dir, fd = pending.pop()
        for name in os.listdir(fd):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            st_ = os.stat(name, dir_fd=fd, follow_symlinks=False)
            found[rel] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
            if stat.S_ISDIR(st_.st_mode):
                pending.append((rel, os.open(name, DIR_FLAGS, dir_fd=fd)))
        os.close(fd)
    return found


def shown(raw: str) -> str:
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def expected_records(root: str) -> list[tuple[str, str]]:
    """(repo, path) of every entry the reader must account for: each non-folder entry of a repository,
    and each root entry that is not read as a repository (path ""), which is one record with all it holds."""
    expected = []
    for rel, (mode, _, _) in listing(root).items():
        repo, _, path = rel.partition("/")
        if not is_repository(root, repo):
            if not path:
                expected.append((shown(repo), ""))
            continue
        if not stat.S_ISDIR(mode) or path.split("/")[-1] == ".git":
            expected.append((shown(repo), shown(path)))
    return sorted(expected)


def is_repository(root: str, name: str) -> bool:
    """A root entry that is read as a repository: a real folder, not hidden, named in UTF-8."""
    return stat.S_ISDIR(os.lstat(os.path.join(root, name)).st_mode) and not name.startswith(".") and shown(name) == name


def read_everything(root: str) -> list:
    """What the reader makes of every root entry, in a thread so that a hang fails the test instead of the suite."""
    result: list = []

    def work():
        result.extend(out for ref in list_repos(root) for out in read_repo(ref, MAX_FILE_BYTES))
        result.append(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(BOUND_SECONDS)
    assert result and result[-1] is None, f"reading did not finish within {BOUND_SECONDS}s"
    return result[:-1]


@pytest.mark.slow
@FUZZ
@given(layout=repos)
def test_every_entry_of_any_tree_is_one_record_read_in_bounded_time_and_nothing_changes(tmp_path_factory, layout):
    work = str(tmp_path_factory.mktemp("tree"))
    outside = os.path.join(work, "outside")
    os.makedirs(outside)
    with open(os.path.join(outside, "secret.py"), "w") as f:
        f.write(f"SECRET = {SECRET!r}\n")
    root = os.path.join(work, "repos")
    os.makedirs(root)
    root_fd = os.open(root, DIR_FLAGS)
    build(root_fd, [("dir", name, nodes) if kind == "folder" else (kind, name, b"") for name, kind, nodes in layout], outside)
    os.close(root_fd)
    before = listing(work)

    try:
        records = read_everything(root)
        expected = expected_records(root)
        after = listing(work)
    finally:  # rm, not shutil.rmtree (nor pytest's cleanup of old tmp folders), removes trees a thousand deep
        subprocess.run(["rm", "-rf", "--", work], check=True)

    found = sorted((r.repo, r.path) for r in records if not isinstance(r, RepoSnapshot))
    assert found == expected  # one record per entry: nothing lost, nothing twice
    assert all(isinstance(r, (RepoFile, Rejected, RepoSnapshot)) for r in records)
    assert not any(SECRET in r.content for r in records if isinstance(r, RepoFile))
    assert after == before
