"""The local source: git repositories at HEAD, plain folders, and files it must reject."""

from __future__ import annotations

import os
import shutil

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Rejected, RepoFile, RepoSnapshot
from tests.conftest import SAMPLE_REPOS, local_pipeline, make_git_repo
from transforms.sources.local.source import ReadLocalRepos, list_repos, read_repo

MIT = open(os.path.join(SAMPLE_REPOS, "textkit", "LICENSE")).read()


def read_all(root: str, name: str, max_bytes: int = 1_000_000):
    ref = next(r for r in list_repos(root) if r.name == name)
    out = list(read_repo(ref, max_bytes))
    files = {r.path: r for r in out if isinstance(r, RepoFile)}
    rejected = {r.path: r for r in out if isinstance(r, Rejected)}
    snapshot = [r for r in out if isinstance(r, RepoSnapshot)]
    return files, rejected, snapshot[0]


def test_git_repository_is_read_at_head_not_from_the_work_tree(tmp_path):
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "LICENSE").write_text(MIT)
    (repo / "a.py").write_text("print('committed')\n")
    commit = make_git_repo(str(repo))
    (repo / "a.py").write_text("print('edited, not committed')\n")
    (repo / "untracked.py").write_text("x = 1\n")

    files, rejected, snapshot = read_all(str(tmp_path), "proj")
    assert set(files) == {"LICENSE", "a.py"}
    assert files["a.py"].content == "print('committed')\n"
    assert files["a.py"].revision == commit == snapshot.revision
    assert files["a.py"].license == "MIT"
    assert files["a.py"].id == RepoFile.make_id("local", "proj", "a.py", commit)
    assert not rejected


def test_git_symlink_and_binary_are_rejected_with_reasons(tmp_path):
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "code.py").write_text("x = 1\n")
    (repo / "blob.bin").write_bytes(b"\x89PNG\x00\x00data")
    os.symlink("code.py", repo / "link.py")
    make_git_repo(str(repo))
    files, rejected, _ = read_all(str(tmp_path), "proj")
    assert set(files) == {"code.py"}
    assert rejected["link.py"].reason == "symlink"
    assert rejected["blob.bin"].reason == "binary"
    assert files["code.py"].license is None


def test_plain_folder_rejects_large_non_utf8_and_symlinked_files(tmp_path):
    repo = tmp_path / "plain"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "ok.py").write_text("def f():\n    return 1\n")
    (repo / "pkg" / "big.py").write_text("x = 1\n" * 100)
    (repo / "pkg" / "latin.py").write_bytes("s = 'señor'\n".encode("latin-1"))
    os.symlink("/etc/passwd", repo / "pkg" / "passwd")
    files, rejected, snapshot = read_all(str(tmp_path), "plain", max_bytes=200)
    assert set(files) == {"pkg/ok.py"}
    assert rejected["pkg/big.py"].reason == "too-large"
    assert rejected["pkg/latin.py"].reason == "not-utf8"
    assert rejected["pkg/passwd"].reason == "symlink"
    assert files["pkg/ok.py"].revision is None
    assert snapshot.revision.startswith("tree:") and snapshot.files == 1


def test_plain_folder_snapshot_changes_with_content(tmp_path):
    repo = tmp_path / "plain"
    repo.mkdir()
    (repo / "a.py").write_text("a = 1\n")
    first = read_all(str(tmp_path), "plain")[2].revision
    (repo / "a.py").write_text("a = 2\n")
    assert read_all(str(tmp_path), "plain")[2].revision != first


def test_metadata_file_sets_repo_name_stars_and_origin():
    refs = {r.name: r for r in list_repos(SAMPLE_REPOS, os.path.join(SAMPLE_REPOS, "..", "repos.json"))}
    assert refs["mathlib"].repo == "numerics/mathlib" and refs["mathlib"].stars == 5400
    assert refs["webapp"].origin == "gitlab"


def test_read_transform_routes_every_file(tmp_path):
    shutil.copytree(os.path.join(SAMPLE_REPOS, "textkit"), tmp_path / "textkit")
    make_git_repo(str(tmp_path / "textkit"))
    with local_pipeline() as p:
        out = p | ReadLocalRepos(list_repos(str(tmp_path)), 1_000_000)
        assert_that(
            out.rejected | beam.Map(lambda r: (r.path, r.reason)),
            equal_to([("assets/logo.png", "binary"), ("textkit/legacy_latin1.py", "not-utf8")]),
            label="CheckRejected",
        )
        assert_that(out.kept | beam.Map(lambda f: f.license), equal_to(["MIT"] * 8), label="CheckLicense")
        assert_that(out.snapshot | beam.Map(lambda s: s.files), equal_to([8]), label="CheckSnapshot")
