"""One test per class of fault a red-team pass found in the read stage, each failing on the reader before it.

Classes: a bad repository stopped the run (missing git object, deep nesting, a device read
without bound); hangs (a FIFO in a repository or as a dump table); reads outside the root
(a repository folder that is a link); losses the accounting could not see (a fault
part-way through a repository, folders that cannot be read, a dump that is not XML);
duplicate ids (a folder listed twice, two folders with one repo name); unchecked metadata;
limits that could be bypassed (a file growing after the listing, --out inside a source);
messages that misled (git's reason dropped).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading

import py7zr
import pytest

from infra.storage import join
from pipeline.corpus import local_repos
from schemas.config import load_config
from schemas.errors import ConfigError
from schemas.records import Rejected, RepoFile
from tests.conftest import make_git_repo, run_cli
from tests.hostile.hostile_inputs import SECRET, make_outside, write
from transforms.sources.local.folders import FolderReader
from transforms.sources.local.source import list_repos, read_entries, read_repo
from transforms.stackoverflow.dump_files import DumpError, find_dump_files, split_ranges
from transforms.stackoverflow.source import read_range

MAX = 1000
NOBODY = 65534


def outcome(records) -> dict[str, str]:
    """{path: "kept" or the reject reason} of one repository's records."""
    return {r.path: r.reason if isinstance(r, Rejected) else "kept" for r in records if isinstance(r, (Rejected, RepoFile))}


def read_root(root, bound: float = 60.0) -> list:
    """Every record of every root entry, failing (not hanging) if reading takes longer than `bound`."""
    done: list = []
    thread = threading.Thread(
        target=lambda: done.append([out for ref in list_repos(str(root)) for out in read_repo(ref, MAX)]), daemon=True
    )
    thread.start()
    thread.join(bound)
    assert done, f"reading did not finish in {bound}s"
    return done[0]


def remove_deep_tree(path: str) -> None:
    """Remove a tree too deep for shutil.rmtree (and so for pytest's own cleanup of old tmp folders)."""
    subprocess.run(["rm", "-rf", "--", path], check=True)


# ---- 2. one bad repository stopped the whole run -------------------------------------


def test_a_missing_git_object_rejects_that_file_alone_with_gits_words(tmp_path):
    repo = tmp_path / "repos" / "proj"
    write(str(repo / "a.py"), "a = 1\n")
    write(str(repo / "b.py"), "b = 2\n")
    write(str(repo / "c.py"), "c = 3\n")
    make_git_repo(str(repo))
    blob = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD:b.py"], capture_output=True, text=True).stdout.strip()
    os.remove(repo / ".git" / "objects" / blob[:2] / blob[2:])
    records = read_root(tmp_path / "repos")
    assert outcome(records) == {"a.py": "kept", "b.py": "unreadable", "c.py": "kept"}
    assert "missing" in next(r.detail for r in records if isinstance(r, Rejected))


def test_a_plain_folder_nested_1100_deep_is_read_to_the_bottom(tmp_path):
    deep = str(tmp_path / "repos" / "deep")
    os.makedirs(deep)
    for _ in range(1100):  # one level at a time: os.makedirs itself recurses
        deep = os.path.join(deep, "d")
        os.mkdir(deep)
    write(os.path.join(deep, "bottom.py"), "x = 1\n")
    write(str(tmp_path / "repos" / "deep" / "top.py"), "y = 2\n")
    try:
        records = read_root(tmp_path / "repos")
    finally:
        remove_deep_tree(str(tmp_path / "repos"))
    assert outcome(records) == {"/".join(["d"] * 1100 + ["bottom.py"]): "kept", "top.py": "kept"}


def test_character_devices_are_rejected_unread(tmp_path):
    repo = tmp_path / "repos" / "dev"
    write(str(repo / "ok.py"), "x = 1\n")
    os.mknod(repo / "zero.py", stat.S_IFCHR | 0o666, os.makedev(1, 5))  # /dev/zero: endless
    os.mknod(repo / "null.py", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.symlink("/dev/zero", repo / "zero_link.py")
    assert outcome(read_root(tmp_path / "repos")) == {
        "ok.py": "kept",
        "zero.py": "device",
        "null.py": "device",
        "zero_link.py": "symlink",
    }


# ---- 3. hangs ---------------------------------------------------------------------------


def test_a_fifo_in_a_repository_is_rejected_without_blocking(tmp_path):
    repo = tmp_path / "repos" / "pipes"
    write(str(repo / "ok.py"), "x = 1\n")
    os.mkfifo(repo / "LICENSE")  # a license candidate: read before anything else
    os.mkfifo(repo / "pipe.py")
    assert outcome(read_root(tmp_path / "repos", bound=20)) == {"ok.py": "kept", "LICENSE": "fifo", "pipe.py": "fifo"}


def test_a_fifo_or_a_folder_named_posts_xml_is_a_clear_error_not_a_hang(tmp_path):
    os.makedirs(tmp_path / "fifo.site")
    os.mkfifo(tmp_path / "fifo.site" / "Posts.xml")
    with pytest.raises(DumpError, match="Posts.xml' is a FIFO"):
        find_dump_files(str(tmp_path / "fifo.site"))
    os.makedirs(tmp_path / "dir.site" / "Posts.xml")
    with pytest.raises(DumpError, match="Posts.xml' is a folder"):
        find_dump_files(str(tmp_path / "dir.site"))


# ---- 4. reads outside the source root ---------------------------------------------------


def test_a_repository_folder_that_is_a_link_is_one_rejection_and_never_followed(tmp_path):
    outside = make_outside(str(tmp_path))
    root = tmp_path / "repos"
    write(str(root / "real" / "ok.py"), "x = 1\n")
    os.symlink(outside, root / "linked")
    os.symlink("../..", root / "up")
    records = read_root(root)
    assert {(r.repo, r.path): r.reason for r in records if isinstance(r, Rejected)} == {
        ("linked", ""): "symlink",
        ("up", ""): "symlink",
    }
    assert not any(SECRET in r.content for r in records if isinstance(r, RepoFile))


# ---- 5. losses the accounting could not see ---------------------------------------------


def test_a_socket_and_a_file_deleted_after_listing_cost_only_themselves(tmp_path):
    repo = tmp_path / "repos" / "proj"
    for name in ("a.py", "b.py", "gone.py", "z.py"):
        write(str(repo / name), f"{name[0]} = 1\n")
    os.mknod(repo / "m.sock", stat.S_IFSOCK | 0o600)
    (ref,) = list_repos(str(tmp_path / "repos"))
    reader = FolderReader(ref.path)
    entries = reader.entries()
    os.remove(repo / "gone.py")  # between the listing and the read
    records = list(read_entries(ref, reader, entries, MAX))
    assert outcome(records) == {"a.py": "kept", "b.py": "kept", "gone.py": "unreadable", "m.sock": "socket", "z.py": "kept"}


def as_nobody(compute):
    """compute() in a forked child running as the unprivileged user `nobody` (root ignores permissions)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, compute, send the answer, exit without cleanup
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            answer = json.dumps(compute())
        except BaseException as e:
            answer = json.dumps({"error": repr(e)})
        os.write(write_end, answer.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_folders_and_files_nobody_may_read_are_each_one_record_and_the_rest_is_read():
    work = tempfile.mkdtemp(dir="/tmp")
    try:
        os.chmod(work, 0o755)
        repo = os.path.join(work, "repos", "proj")
        write(os.path.join(repo, "a.py"), "a = 1\n")
        write(os.path.join(repo, "secret.py"), "s = 1\n")
        write(os.path.join(repo, "locked", "inside.py"), "i = 1\n")
        write(os.path.join(repo, "z.py"), "z = 1\n")
        for folder, _, files in os.walk(work):
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
        os.chmod(os.path.join(repo, "secret.py"), 0)
        os.chmod(os.path.join(repo, "locked"), 0)
        answer = as_nobody(lambda: outcome(read_root(os.path.join(work, "repos"))))
    finally:
        shutil.rmtree(work)
    assert answer == {"a.py": "kept", "secret.py": "unreadable", "locked": "unreadable-folder", "z.py": "kept"}


def test_a_dump_table_that_is_not_xml_is_an_error_or_a_rejection(tmp_path):
    site = tmp_path / "gz.site"
    site.mkdir()
    (site / "Posts.xml").write_bytes(gzip.compress(b'<posts><row Id="1" /></posts>'))
    (site / "Comments.xml").write_bytes(b"<comments></comments>")
    with pytest.raises(DumpError, match="gzip-compressed"):
        find_dump_files(str(site))
    (site / "Posts.xml").write_bytes('<?xml version="1.0" encoding="utf-16"?>'.encode("utf-16"))
    with pytest.raises(DumpError, match="UTF-16"):
        find_dump_files(str(site))
    archive = str(tmp_path / "packed.site.7z")
    with py7zr.SevenZipFile(archive, "w") as z:
        z.writestr(gzip.compress(b"<posts></posts>"), "Posts.xml")
        z.writestr(b"<comments></comments>", "Comments.xml")
    posts = [r for r in split_ranges(find_dump_files(archive), 1 << 20) if r.file.table == "Posts.xml"]
    (rejected,) = list(read_range(posts[0], 1 << 20))
    assert rejected.reason == "not-xml" and "gzip" in rejected.detail


# ---- 6. duplicate ids --------------------------------------------------------------------


def config_file(tmp_path, local: list[dict]) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"name": "t", "sources": {"local": local}}))
    return str(path)


def test_the_same_folder_twice_or_two_folders_as_one_repo_fail_before_the_run(tmp_path):
    write(str(tmp_path / "repos" / "a" / "x.py"), "x = 1\n")
    write(str(tmp_path / "repos" / "b" / "y.py"), "y = 1\n")
    twice = load_config(config_file(tmp_path, [{"path": "repos"}, {"path": "./repos/"}]))
    with pytest.raises(ConfigError, match=r"sources.local\[1\].path: .* is the same folder as sources.local\[0\]"):
        local_repos(twice)
    (tmp_path / "meta.json").write_text(json.dumps({"a": {"repo": "o/p"}, "b": {"repo": "o/p"}}))
    one_name = load_config(config_file(tmp_path, [{"path": "repos", "metadata": "meta.json"}]))
    with pytest.raises(ConfigError, match="folders 'a' .* and 'b' are both repository 'o/p'"):
        local_repos(one_name)


# ---- 7. unchecked metadata ---------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata, key",
    [
        ({"a": {"stars": "1.2k"}}, "['a'].stars"),
        ({"a": {"stars": True}}, "['a'].stars"),
        ({"a": {"stars": 10**20}}, "['a'].stars"),
        ({"a": {"stars": -1}}, "['a'].stars"),
        ({"a": None}, "['a'] must be an object"),
        ({"a": {"repo": 7}}, "['a'].repo"),
        ({"a": {"origin": ["github"]}}, "['a'].origin"),
        ({"a": {"star": 1}}, "unknown key"),
        ([{"a": {}}], "the top level must be an object"),
    ],
)
def test_bad_metadata_fails_before_the_run_naming_the_file_and_the_key(tmp_path, metadata, key):
    write(str(tmp_path / "repos" / "a" / "x.py"), "x = 1\n")
    (tmp_path / "meta.json").write_text(json.dumps(metadata))
    config = load_config(config_file(tmp_path, [{"path": "repos", "metadata": "meta.json"}]))
    with pytest.raises(ConfigError) as error:
        local_repos(config)
    assert "sources.local[0].metadata" in str(error.value) and "meta.json" in str(error.value)
    assert key in str(error.value)


def test_null_stars_mean_unknown(tmp_path):
    write(str(tmp_path / "repos" / "a" / "x.py"), "x = 1\n")
    (tmp_path / "meta.json").write_text(json.dumps({"a": {"stars": None, "repo": "o/a"}}))
    (ref,) = list_repos(str(tmp_path / "repos"), str(tmp_path / "meta.json"))
    assert ref.stars is None and ref.repo == "o/a"


# ---- 8. limits that could be bypassed ---------------------------------------------------


def test_a_file_that_grows_after_the_listing_is_cut_off_and_rejected(tmp_path):
    repo = tmp_path / "repos" / "proj"
    write(str(repo / "grows.py"), "x = 1\n")
    (ref,) = list_repos(str(tmp_path / "repos"))
    reader = FolderReader(ref.path)
    entries = reader.entries()
    write(str(repo / "grows.py"), "x = 1\n" * 1000)  # 6000 bytes > MAX, after the listing said 6
    (rejected, _snapshot) = list(read_entries(ref, reader, entries, MAX))
    assert rejected.reason == "too-large" and "when read" in rejected.detail


def test_out_inside_a_source_folder_fails_before_the_run(tmp_path):
    write(str(tmp_path / "repos" / "a" / "x.py"), "x = 1\n")
    config = load_config(config_file(tmp_path, [{"path": "repos"}]))
    with pytest.raises(ConfigError, match=r"--out: .* is inside sources.local\[0\].path"):
        local_repos(config, join(str(tmp_path / "repos"), "datasets", "t"))


# ---- 9. messages that misled ------------------------------------------------------------


def test_a_repository_git_cannot_read_is_rejected_with_gits_own_reason(tmp_path):
    repo = tmp_path / "repos" / "broken"
    write(str(repo / "a.py"), "a = 1\n")
    make_git_repo(str(repo))
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/nowhere\n")
    (rejected,) = read_root(tmp_path / "repos")
    assert rejected.reason == "repo-unreadable"
    assert rejected.detail.startswith("git rev-parse: fatal:"), rejected.detail


@pytest.mark.slow
def test_when_every_file_is_rejected_the_run_says_so_and_keeps_the_version_that_shows_why(tmp_path):
    write(str(tmp_path / "repos" / "nolicense" / "a.py"), "def f():\n    return 1\n")
    (tmp_path / "c.yaml").write_text(
        json.dumps({"name": "t", "stages": ["corpus", "tokenizer"], "sources": {"local": [{"path": "repos"}]}})
    )
    proc = run_cli("run", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode != 0
    assert "the corpus kept no document" in proc.stderr and "license/" in proc.stderr
    assert "sample_fraction" not in proc.stderr  # no advice to raise a fraction: the sample is not the cause
    version = str(tmp_path / "out" / "t" / "v0001")
    assert f"kept to show why: {version}" in proc.stderr
    assert run_cli("verify", version).returncode == 0
