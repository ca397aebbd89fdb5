"""Hostile local repositories: links out of the tree, a 2 GB one-line file, bad names, odd licenses."""

from __future__ import annotations

import os

import pytest

from schemas.records import Rejected, RepoFile
from tests.conftest import make_git_repo, peak_python_memory
from tests.hostile.hostile_inputs import SECRET, TWO_GB, hostile_repos, make_outside, sparse_file, write
from transforms.cleaning.license import LicenseFilterFn
from transforms.sources.local.source import list_repos, read_repo

MAX_FILE_BYTES = 1_000_000


def tree_state(folder: str) -> dict:
    """Every path under a folder with its size and mtime: what "nothing was written" compares."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            state[os.path.join(dirpath, name)] = (st.st_size, st.st_mtime_ns)
    return state


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("hostile"))
    outside = make_outside(root)
    repos = os.path.join(root, "repos")
    os.makedirs(repos)
    expected = hostile_repos(repos, outside)
    return {"repos": repos, "outside": outside, "expected": expected}


def read_all(repos: str) -> list:
    return [out for ref in list_repos(repos) for out in read_repo(ref, MAX_FILE_BYTES)]


def test_links_out_of_the_tree_are_rejected_and_never_followed(hostile):
    before = tree_state(hostile["outside"])
    records = read_all(hostile["repos"])
    links = [r for r in records if getattr(r, "repo", None) == "links"]
    rejected = {r.path: r.reason for r in links if isinstance(r, Rejected)}
    assert rejected == {path: reason for path, (stage, reason) in hostile["expected"]["links"].items() if stage == "read"}
    assert sorted(r.path for r in links if isinstance(r, RepoFile)) == ["LICENSE", "ok.py"]
    assert not any(SECRET in r.content for r in records if isinstance(r, RepoFile))
    assert tree_state(hostile["outside"]) == before


def test_a_2gb_single_line_file_is_rejected_by_its_size_without_being_read(tmp_path):
    write(str(tmp_path / "repo" / "ok.py"), "x = 1\n")
    sparse_file(str(tmp_path / "repo" / "one_line.py"), TWO_GB)
    sparse_file(str(tmp_path / "repo" / "LICENSE"), TWO_GB, b"MIT License\n")
    records, peak = peak_python_memory(lambda: read_all(str(tmp_path)))
    assert {(r.path, r.reason) for r in records if isinstance(r, Rejected)} == {
        ("one_line.py", "too-large"),
        ("LICENSE", "too-large"),
    }
    assert peak < 8 * 2**20, f"reading took {peak} bytes: the 2 GB files were read"


def test_git_symlinks_out_of_the_tree_and_non_utf8_names_are_rejected(tmp_path):
    outside = make_outside(str(tmp_path))
    repo = tmp_path / "repos" / "gitrepo"
    write(str(repo / "ok.py"), "x = 1\n")
    os.symlink(os.path.join(outside, "secret.py"), repo / "secret_link.py")
    write(os.fsdecode(os.path.join(os.fsencode(str(repo)), b"caf\xe9.py")), "y = 2\n")
    make_git_repo(str(repo))
    records = read_all(str(tmp_path / "repos"))
    assert {(r.path, r.reason) for r in records if isinstance(r, Rejected)} == {
        ("secret_link.py", "symlink"),
        ("caf\ufffd.py", "not-utf8-path"),
    }
    assert [r.path for r in records if isinstance(r, RepoFile)] == ["ok.py"]


def test_a_repository_folder_with_a_non_utf8_name_is_one_rejected_record(hostile):
    records = read_all(hostile["repos"])
    bad = [r for r in records if getattr(r, "repo", "").startswith("bad")]
    assert [(r.repo, r.path, r.reason) for r in bad] == [("bad\ufffdRepo", "", "not-utf8-path")]
    for record in records:  # every text field can be written as UTF-8
        for value in vars(record).values():
            if isinstance(value, str):
                value.encode("utf-8")


@pytest.mark.parametrize("repo", ["empty_license", "huge_license", "garbage_license", "nested_spdx"])
def test_empty_huge_garbage_or_nested_license_files_reject_the_repository(hostile, repo):
    records = [out for ref in list_repos(hostile["repos"]) if ref.name == repo for out in read_repo(ref, MAX_FILE_BYTES)]
    license_filter = LicenseFilterFn(("MIT", "Apache-2.0"))
    outcome = {}
    for record in records:
        if isinstance(record, Rejected):
            outcome[record.path] = ("read", record.reason)
        elif isinstance(record, RepoFile):
            checked = license_filter(record)
            outcome[record.path] = ("license", checked.reason) if isinstance(checked, Rejected) else ("kept", "")
    assert outcome == hostile["expected"][repo]
