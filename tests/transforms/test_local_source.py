"""The local source: git repositories at HEAD, plain folders, and files it must reject."""

from __future__ import annotations

import os
import shutil

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Rejected, RepoFile, RepoSnapshot
from tests.conftest import DIRECT_MODES, SAMPLE_REPOS, local_pipeline, make_git_repo
from transforms.sources.local.source import (
    SNAPSHOT,
    Limits,
    PartTree,
    ReadLocalRepos,
    RepoPart,
    list_repo,
    list_repos,
    read_part_alone,
    read_repo,
    repo_snapshot,
)

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
            out.rejected | beam.Flatten() | beam.Map(lambda r: (r.path, r.reason)),
            equal_to([("assets/logo.png", "binary"), ("textkit/legacy_latin1.py", "not-utf8")]),
            label="CheckRejected",
        )
        assert_that(out.kept | beam.Map(lambda f: f.license), equal_to(["MIT"] * 8), label="CheckLicense")
        assert_that(out.extras[SNAPSHOT] | beam.Map(lambda s: s.files), equal_to([8]), label="CheckSnapshot")


def sample_copy(tmp_path, git: bool) -> str:
    """Two sample repositories under tmp_path/repos (git repositories with `git`), plus an empty folder."""
    root = tmp_path / "repos"
    for name in ("textkit", "mathlib"):
        shutil.copytree(os.path.join(SAMPLE_REPOS, name), root / name)
        if git:
            make_git_repo(str(root / name))
    (root / "empty").mkdir()
    return str(root)


def read_in_parts(ref, part_bytes: int):
    """A repository's parts, each read alone (last first, as workers may), and the snapshot they make."""
    limits = Limits(1_000_000, part_bytes=part_bytes)
    parts = list(list_repo(ref, limits))
    outs = [out for part in reversed(parts) for out in read_part_alone(part, limits)]
    records = [out for out in outs if not isinstance(out, PartTree)]
    return parts, records, repo_snapshot([out for out in outs if isinstance(out, PartTree)])


@pytest.mark.parametrize("git", [False, True], ids=["plain", "git"])
def test_a_repository_read_in_parts_gives_the_records_and_snapshot_of_one_whole_read(tmp_path, git):
    for ref in list_repos(sample_copy(tmp_path, git)):
        whole = list(read_repo(ref, 1_000_000))
        parts, records, snapshot = read_in_parts(ref, part_bytes=2_000)
        assert all(isinstance(p, RepoPart) and (p.index, p.count) == (i, len(parts)) for i, p in enumerate(parts))
        listed = [e for p in parts for e in p.entries]
        assert [e.path for e in listed] == sorted(e.path for e in listed)  # consecutive, in listing order
        for part in parts:  # no part over the size, unless one file alone is
            sizes = [e.size for e in part.entries if e.kind == "file"]
            assert sum(sizes) <= 2_000 or len(part.entries) == 1
        if ref.name == "empty":
            assert len(parts) == 1 and parts[0].entries == () and records == []
        else:
            assert len(parts) >= 3
        assert sorted(records, key=lambda r: r.path) == sorted(whole[:-1], key=lambda r: r.path)
        assert snapshot == whole[-1] and isinstance(snapshot, RepoSnapshot)


def test_a_snapshot_needs_every_part_of_its_repository(tmp_path):
    (ref,) = [r for r in list_repos(sample_copy(tmp_path, git=False)) if r.name == "textkit"]
    limits = Limits(1_000_000, part_bytes=2_000)
    trees = [out for part in list_repo(ref, limits) for out in read_part_alone(part, limits) if isinstance(out, PartTree)]
    with pytest.raises(ValueError, match="'textkit': parts"):
        repo_snapshot(trees[1:])


@pytest.mark.slow  # a Beam pipeline on two worker processes
def test_the_read_transform_spreads_parts_over_workers_and_gives_what_one_read_gives(tmp_path):
    refs = list_repos(sample_copy(tmp_path, git=True))
    whole = [out for ref in refs for out in read_repo(ref, 1_000_000)]
    with local_pipeline(*DIRECT_MODES["multi_processing"]) as p:
        out = p | ReadLocalRepos(refs, 1_000_000, part_bytes=2_000)
        assert_that(out.kept, equal_to([r for r in whole if isinstance(r, RepoFile)]), label="CheckKept")
        assert_that(out.rejected | beam.Flatten(), equal_to([r for r in whole if isinstance(r, Rejected)]), label="CheckRejected")
        assert_that(out.extras[SNAPSHOT], equal_to([r for r in whole if isinstance(r, RepoSnapshot)]), label="CheckSnapshots")
        reads = len(whole) - len(refs)
        kept = sum(isinstance(r, RepoFile) for r in whole)
        assert_that(
            out.tally | beam.Filter(lambda kv: kv[0][1] in ("in", "kept")) | beam.CombinePerKey(sum),
            equal_to([(("read", "in", ""), reads), (("read", "kept", ""), kept)]),
            label="CheckTally",
        )
