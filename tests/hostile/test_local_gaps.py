"""The local source's silent gaps: each entry it does not read is a rejection with its reason, every
distinct name its own id, a hung git a bounded rejection, and metadata that names no folder an error.

Every input is built here. Reads that could hang (FIFOs, a git blocked on a FIFO in its object
store) run on a thread joined with a bound, so a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
import time

import pytest
from apache_beam.testing.util import assert_that

from pipeline.corpus import local_repos
from schemas.config import ReadConfig, load_config
from schemas.errors import ConfigError
from schemas.records import Rejected, RepoFile, record_id
from schemas.sources_config import ArchiveLimits
from tests.conftest import SAMPLE_REPOS, git, local_pipeline, make_git_repo, run_cli
from tests.hostile.hostile_inputs import write
from tests.hostile.test_archives_hostile import member, tar_gz
from transforms.sources.crawl.archives import RepoInfo, read_archive
from transforms.sources.local.source import GitReader, ReadLocalRepos, list_repos, read_entries, read_repo
from transforms.sources.local.watchdog import Watchdog

MAX = 100_000
BOUND = 60.0  # seconds any read here may take; the slowest is a 1 s git timeout


def read_bounded(root, git_timeout: float = 600.0) -> list:
    """Every record of every entry under `root`, failing (not hanging) past BOUND."""
    done: list = []

    def read():
        done.append([out for ref in list_repos(str(root)) for out in read_repo(ref, MAX, MAX, git_timeout)])

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert done, f"reading {root} did not finish in {BOUND}s"
    return done[0]


def by_path(records) -> dict[str, Rejected | RepoFile]:
    return {r.path: r for r in records if isinstance(r, (Rejected, RepoFile))}


def test_a_hidden_repository_folder_is_one_rejection_and_hidden_folders_inside_are_read(tmp_path):
    write(str(tmp_path / "repos" / ".secret-repo" / "a.py"), "x = 1\n")
    write(str(tmp_path / "repos" / "proj" / ".github" / "ci.py"), "y = 2\n")
    records = read_bounded(tmp_path / "repos")
    hidden = [r for r in records if isinstance(r, Rejected) and r.repo == ".secret-repo"]
    assert [(r.path, r.reason) for r in hidden] == [("", "hidden")]
    assert "hidden entry at the source root" in hidden[0].detail
    assert [r.path for r in records if isinstance(r, RepoFile)] == [".github/ci.py"]


def test_special_files_in_a_repository_folder_are_rejected_with_their_kind_and_never_block(tmp_path):
    repo = tmp_path / "repos" / "proj"
    write(str(repo / "ok.py"), "x = 1\n")
    os.makedirs(repo / ".hidden")
    os.mkfifo(repo / ".hidden" / "pipe.py")
    os.mkfifo(repo / "README.md")  # a license candidate: read before anything else
    os.mknod(repo / "zero.py", stat.S_IFCHR | 0o666, os.makedev(1, 5))  # a /dev/zero of its own
    os.symlink("/dev/zero", repo / "zero_link.py")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(repo / "s.sock"))
        records = by_path(read_bounded(tmp_path / "repos"))
    reasons = {path: r.reason if isinstance(r, Rejected) else "kept" for path, r in records.items()}
    assert reasons == {
        "ok.py": "kept",
        ".hidden/pipe.py": "fifo",
        "README.md": "fifo",
        "zero.py": "device",
        "zero_link.py": "symlink",
        "s.sock": "socket",
    }
    assert all(r.detail for r in records.values() if isinstance(r, Rejected))


BAD_NAMES = [b"a\xff.py", b"a\xfe.py", b"a\xfd.py"]  # all shown as "a\ufffd.py"


def test_names_that_differ_only_in_bytes_that_are_not_utf8_get_distinct_ids(tmp_path):
    repo = tmp_path / "repos" / "proj"
    write(str(repo / "ok.py"), "x = 1\n")
    for name in BAD_NAMES:
        with open(os.path.join(os.fsencode(repo), name), "wb") as f:
            f.write(b"y = 2\n")
    records = [r for r in read_bounded(tmp_path / "repos") if isinstance(r, (Rejected, RepoFile))]
    bad = [r for r in records if isinstance(r, Rejected)]
    assert [(r.path, r.reason) for r in bad] == [("a\ufffd.py", "not-utf8-path")] * 3
    assert len({r.id for r in records}) == 4
    ok = next(r for r in records if isinstance(r, RepoFile))
    assert ok.id == RepoFile.make_id("local", "proj", "ok.py", None)  # valid names keep the ids they had


def test_git_paths_that_differ_only_in_bytes_that_are_not_utf8_get_distinct_ids(tmp_path):
    repo = tmp_path / "repos" / "proj"
    write(str(repo / "ok.py"), "x = 1\n")
    for name in BAD_NAMES:
        with open(os.path.join(os.fsencode(repo), name), "wb") as f:
            f.write(name)
    make_git_repo(str(repo))
    bad = [r for r in read_bounded(tmp_path / "repos") if isinstance(r, Rejected)]
    assert [r.reason for r in bad] == ["not-utf8-path"] * 3
    assert len({r.id for r in bad}) == 3


def test_repository_folders_that_differ_only_in_bytes_that_are_not_utf8_get_distinct_ids(tmp_path):
    root = os.fsencode(tmp_path / "repos")
    for name in (b"r\xff", b"r\xfe"):
        os.makedirs(os.path.join(root, name))
        write(os.path.join(os.fsdecode(root), os.fsdecode(name), "a.py"), "x = 1\n")
    records = read_bounded(tmp_path / "repos")
    assert [(r.repo, r.reason) for r in records] == [("r\ufffd", "not-utf8-path")] * 2
    assert records[0].id != records[1].id
    assert record_id("local", "r\ufffd", "", None) not in {r.id for r in records}


def test_archive_members_that_differ_only_in_bytes_that_are_not_utf8_get_distinct_ids():
    names = ["caf\xe9.py", "caf\xe8.py", "caf\xe7.py"]  # latin-1 bytes 0xe9, 0xe8, 0xe7: not UTF-8
    data = tar_gz(
        [member("top/", 0), member("top/ok.py", data=b"x = 1\n")] + [member(f"top/{n}", data=b"y\n") for n in names], "latin-1"
    )
    records = list(read_archive(RepoInfo("github", "o/r", "c" * 40, "MIT", 1, "github"), data, ArchiveLimits(), MAX))
    bad = [r for r in records if isinstance(r, Rejected)]
    assert [(r.path, r.reason) for r in bad] == [("caf\ufffd.py", "not-utf8-path")] * 3
    assert len({r.id for r in bad}) == 3
    assert next(r for r in records if isinstance(r, RepoFile)).id == RepoFile.make_id("github", "o/r", "ok.py", "c" * 40)


def git_repo_with_a_fifo_object(tmp_path, which: str) -> str:
    """A git repository whose object store holds a FIFO in place of one object: git blocks opening it.

    which: "blob" (a file's content) or "tree" (the root folder's listing): either way git ls-tree hangs.
    """
    repo = tmp_path / "repos" / "proj"
    write(str(repo / "a.py"), "x = 1\n")
    write(str(repo / "b.py"), "y = 2\n")
    make_git_repo(str(repo))
    spec = "HEAD:a.py" if which == "blob" else "HEAD^{tree}"
    object_id = git(str(repo), "rev-parse", spec).strip()
    loose = repo / ".git" / "objects" / object_id[:2] / object_id[2:]
    os.chmod(loose, 0o644)
    os.remove(loose)
    os.mkfifo(loose)
    return str(repo)


def test_a_git_that_hangs_handing_over_a_file_is_a_rejection_of_the_repository_files_not_a_hang(tmp_path):
    repo = tmp_path / "repos" / "proj"
    for name in ("a.py", "b.py", "c.py"):
        write(str(repo / name), f"{name[0]} = 1\n")
    make_git_repo(str(repo))
    ref = list_repos(str(tmp_path / "repos"))[0]
    reader = GitReader(str(repo), timeout=1.0)
    entries = reader.entries()  # listed; then the object store stops answering (a hung mount, a FIFO)
    blob = git(str(repo), "rev-parse", "HEAD:b.py").strip()
    loose = repo / ".git" / "objects" / blob[:2] / blob[2:]
    os.remove(loose)
    os.mkfifo(loose)
    done: list = []
    thread = threading.Thread(target=lambda: done.append(list(read_entries(ref, reader, entries, MAX))), daemon=True)
    thread.start()
    thread.join(BOUND)
    reader.close()
    assert done, f"reading did not finish in {BOUND}s"
    records = by_path(done[0])
    assert isinstance(records["a.py"], RepoFile)
    assert records["b.py"].reason == "unreadable"
    assert records["b.py"].detail == "git cat-file did not answer in 1s (read.git_timeout_seconds)"
    # one timeout for the repository: the files after it are rejected unread, not waited for in turn
    assert records["c.py"].reason == "unreadable" and records["c.py"].detail.startswith("not read: git cat-file did not answer")


def test_a_git_that_hangs_listing_is_one_repo_unreadable_record(tmp_path):
    git_repo_with_a_fifo_object(tmp_path, "tree")
    records = read_bounded(tmp_path / "repos", git_timeout=1.0)
    assert [(r.repo, r.path, r.reason) for r in records] == [("proj", "", "repo-unreadable")]
    assert records[0].detail == "git ls-tree did not finish in 1s (read.git_timeout_seconds)"


def test_the_git_timeout_comes_from_the_config_through_the_beam_read(tmp_path):
    git_repo_with_a_fifo_object(tmp_path, "blob")  # git ls-tree --long opens every blob for its size
    config = load_config(str(write_config(tmp_path, "read:\n  git_timeout_seconds: 1.5\n")))
    assert config.read.limits() == (1_000_000, 20_000_000, 1.5)

    def check(records):
        assert [(r.repo, r.reason, r.detail) for r in records] == [
            ("proj", "repo-unreadable", "git ls-tree did not finish in 1.5s (read.git_timeout_seconds)")
        ]

    outcome: list = []

    def run():
        try:
            with local_pipeline("--direct_running_mode=in_memory") as p:
                read = p | ReadLocalRepos(list_repos(str(tmp_path / "repos")), *config.read.limits())
                assert_that(read.rejected, check)
            outcome.append("finished")
        except Exception as e:  # the assertion fails inside the pipeline; report it here
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert outcome == ["finished"], f"the pipeline did not finish in {BOUND}s" if not outcome else outcome


def write_config(tmp_path, body: str):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nsources:\n  local:\n    - path: repos\n      metadata: meta.json\n" + body)
    if not (tmp_path / "meta.json").exists():
        (tmp_path / "meta.json").write_text("{}")
    return path


@pytest.mark.parametrize(
    "key, found",
    [("no-such-folder", "names no entry"), (".hidden", "is a hidden entry, not a repository folder")],
)
def test_a_metadata_key_that_names_no_repository_folder_fails_before_the_run_naming_it(tmp_path, key, found):
    os.makedirs(tmp_path / "repos" / "proj")
    os.makedirs(tmp_path / "repos" / ".hidden")
    (tmp_path / "meta.json").write_text(f'{{"proj": {{"stars": 3}}, "{key}": {{"stars": 120}}}}')
    config = load_config(str(write_config(tmp_path, "")))
    with pytest.raises(ConfigError) as refused:
        local_repos(config)
    message = str(refused.value)
    assert message.startswith("sources.local[0].metadata: ") and f"[{key!r}] {found}" in message


def test_git_timeout_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="read.git_timeout_seconds must be positive, got 0.0"):
        load_config(str(write_config(tmp_path, "read:\n  git_timeout_seconds: 0\n")))
    assert ReadConfig().git_timeout_seconds == 600.0


def test_a_fifo_object_really_blocks_git(tmp_path):
    """The premise of the timeout tests: without a timeout, git would wait on the FIFO for ever."""
    repo = git_repo_with_a_fifo_object(tmp_path, "blob")
    blob = git(repo, "ls-tree", "HEAD", "a.py").split()[2]
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(["git", "-C", repo, "cat-file", "--batch"], input=blob.encode() + b"\n", capture_output=True, timeout=1)


@pytest.mark.slow
def test_a_run_with_a_lower_case_allow_list_keeps_mit_files_and_rejects_the_hidden_folder(tmp_path):
    mit = open(os.path.join(SAMPLE_REPOS, "textkit", "LICENSE")).read()
    write(str(tmp_path / "repos" / "proj" / "LICENSE"), mit)
    write(str(tmp_path / "repos" / "proj" / "app.py"), "def add(a, b):\n    return a + b\n")
    write(str(tmp_path / "repos" / ".hidden" / "LICENSE"), mit)
    write(str(tmp_path / "repos" / ".hidden" / "b.py"), "x = 1\n")
    (tmp_path / "c.yaml").write_text("name: t\nsources:\n  local:\n    - path: repos\nlicense:\n  allow: [mit]\n")
    out = tmp_path / "out"
    run_cli("run", "--config", str(tmp_path / "c.yaml"), "--out", str(out), "--direct_running_mode=in_memory")
    manifest = json.loads((out / "t" / "v0001" / "manifest.json").read_text())
    assert manifest["config"]["license"]["allow"] == ["MIT"]
    read, license = manifest["counts"]["read"], manifest["counts"]["license"]
    assert (read["in"], read["kept"], read["rejected"]) == (3, 2, {"hidden": 1})
    assert license["kept"] == 2 and not license["rejected"]  # LICENSE and app.py, both under MIT


def test_the_watchdog_fires_only_for_a_call_past_its_deadline():
    fired: list = []
    watchdog = Watchdog(0.3, lambda: fired.append(time.monotonic()))
    try:
        for _ in range(1000):  # quick calls, armed and disarmed: never fired
            with watchdog:
                pass
        time.sleep(0.5)
        assert fired == []
        start = time.monotonic()
        with watchdog:
            while not fired and time.monotonic() - start < BOUND:
                time.sleep(0.01)
        assert len(fired) == 1 and 0.3 <= fired[0] - start < BOUND
    finally:
        watchdog.stop()
