"""Hostile repository archives: escapes, links out, bad names, bombs, huge members. Nothing is extracted."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import uuid

from schemas.records import Rejected, RepoFile, RepoSnapshot
from schemas.sources_config import ArchiveLimits
from tests.conftest import peak_python_memory
from tests.hostile.test_local_hostile import tree_state
from tests.transforms.sources.network_fakes import make_tarball
from transforms.sources.crawl.archives import RepoInfo, read_archive

INFO = RepoInfo("github", "o/r", "c" * 40, None, 5, "github")


def read(data: bytes, limits: ArchiveLimits = ArchiveLimits(), max_file_bytes: int = 1_000_000) -> list:
    out = list(read_archive(INFO, data, limits, max_file_bytes))
    assert isinstance(out[-1], RepoSnapshot)
    return out[:-1]


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]], encoding: str = "utf-8") -> bytes:
    """A tar.gz written member by member (names may be any bytes via `encoding`)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT, encoding=encoding) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def member(name: str, size: int = 0, data: bytes | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else size
    return info, data


def test_escaping_members_are_rejected_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = f"/tmp/{uuid.uuid4().hex}/pwned.py"
    data = make_tarball(
        "top",
        {
            "ok.py": b"x = 1\n",
            "../../pwned.py": b"evil = 1\n",
            "../top/../../pwned2.py": b"evil = 2\n",
            target: b"evil = 3\n",
            "abs_link.py": ("symlink", "/etc/passwd"),
            "rel_link.py": ("symlink", "../../../etc/passwd"),
            "hard_out.py": ("hardlink", "../../etc/passwd"),
        },
    )
    before = tree_state(str(tmp_path.parent))
    records = read(data)
    assert {(r.path, r.reason) for r in records if isinstance(r, Rejected)} == {
        ("../../pwned.py", "unsafe-path"),
        ("../top/../../pwned2.py", "unsafe-path"),
        (target, "unsafe-path"),
        ("abs_link.py", "symlink"),
        ("rel_link.py", "symlink"),
        ("hard_out.py", "hardlink"),
    }
    assert [r.path for r in records if isinstance(r, RepoFile)] == ["ok.py"]
    assert tree_state(str(tmp_path.parent)) == before and not os.path.exists(os.path.dirname(target))


def test_member_names_that_are_not_utf8_are_rejected_with_a_printable_path():
    data = tar_gz([member("top/", 0), member("top/ok.py", data=b"x = 1\n"), member("top/caf\xe9.py", data=b"y = 2\n")], "latin-1")
    records = read(data)
    assert [(r.path, r.reason) for r in records if isinstance(r, Rejected)] == [("caf\ufffd.py", "not-utf8-path")]
    assert [r.path for r in records if isinstance(r, RepoFile)] == ["ok.py"]


def test_a_decompression_bomb_stops_at_the_limit_with_bounded_memory():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for i in range(4):
            info = tarfile.TarInfo(f"top/zeros{i}.py")
            info.size = 16 * 2**20
            tar.addfile(info, io.BytesIO(bytes(info.size)))
    bomb = gzip.compress(raw.getvalue(), mtime=0)
    del raw
    assert len(bomb) < 200_000  # 64 MB from a small download
    records, peak = peak_python_memory(lambda: read(bomb, ArchiveLimits(max_uncompressed_bytes=8 * 2**20)))
    assert [(r.path, r.reason) for r in records] == [("zeros0.py", "too-large"), ("", "archive-too-large")]
    assert peak < 4 * 2**20, f"{peak} bytes held while skipping through the bomb"


def test_a_huge_license_member_is_not_read_and_gives_no_license():
    huge = b"MIT License\n" + bytes(3 * 2**20)
    data = tar_gz([member("top/", 0), member("top/LICENSE", data=huge), member("top/a.py", data=b"a = 1\n")])
    records = read(data)
    assert [(r.path, r.reason) for r in records if isinstance(r, Rejected)] == [("LICENSE", "too-large")]
    assert [(r.path, r.license) for r in records if isinstance(r, RepoFile)] == [("a.py", None)]
