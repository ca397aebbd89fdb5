"""Archives read in memory: unsafe members, links, devices, limits, truncation, license detection."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

from schemas.records import Rejected, RepoFile, RepoSnapshot
from schemas.sources_config import ArchiveLimits
from tests.conftest import SAMPLE_REPOS
from tests.transforms.sources.network_fakes import make_tarball
from transforms.sources.crawl.archives import RepoInfo, read_archive

MIT = open(os.path.join(SAMPLE_REPOS, "textkit", "LICENSE"), "rb").read()
INFO = RepoInfo("github", "o/r", "c" * 40, "MIT", 12, "github")
LIMITS = ArchiveLimits()


def read(data: bytes, info: RepoInfo = INFO, limits: ArchiveLimits = LIMITS, max_file_bytes: int = 1000):
    out = list(read_archive(info, data, limits, max_file_bytes))
    assert isinstance(out[-1], RepoSnapshot)
    files = {r.path: r for r in out if isinstance(r, RepoFile)}
    rejected = {r.path: r for r in out if isinstance(r, Rejected)}
    return files, rejected, out[-1]


def test_files_keep_paths_below_the_top_directory_and_repository_facts():
    data = make_tarball("o-r-ccccccc", {"a.py": b"print(1)\n", "pkg/b.js": b"let b = 2\n"}, comment="c" * 40)
    files, rejected, snapshot = read(data)
    assert set(files) == {"a.py", "pkg/b.js"} and not rejected
    a = files["a.py"]
    assert (a.source, a.repo, a.revision, a.license, a.stars, a.origin) == ("github", "o/r", "c" * 40, "MIT", 12, "github")
    assert a.id == RepoFile.make_id("github", "o/r", "a.py", "c" * 40) and a.size == 9
    assert snapshot == RepoSnapshot("github", "o/r", "c" * 40, "MIT", 12, 2)


def test_unsafe_members_and_non_files_are_rejected_by_reason():
    data = make_tarball(
        "top",
        {
            "ok.py": b"x = 1\n",
            "../escape.py": b"evil\n",
            "/etc/cron.d/evil": b"evil\n",
            "link.py": ("symlink", "/etc/passwd"),
            "hard.py": ("hardlink", "ok.py"),
            "dev/null": ("device",),
            "big.py": b"y" * 2000,
            "blob.bin": b"\x89PNG\x00\x00",
            "latin.py": "s = 'señor'\n".encode("latin-1"),
        },
    )
    files, rejected, snapshot = read(data)
    assert set(files) == {"ok.py"}
    reasons = {path: r.reason for path, r in rejected.items()}
    assert reasons == {
        "../escape.py": "unsafe-path",
        "/etc/cron.d/evil": "unsafe-path",
        "link.py": "symlink",
        "hard.py": "hardlink",
        "dev/null": "device",
        "big.py": "too-large",
        "blob.bin": "binary",
        "latin.py": "not-utf8",
    }
    assert all(r.stage == "read" and r.repo == "o/r" for r in rejected.values())
    assert snapshot.files == 1


def test_truncated_archive_keeps_what_was_read_and_rejects_the_rest():
    files = {f"m{i:02d}.py": os.urandom(300).hex().encode() for i in range(20)}  # incompressible text
    data = make_tarball("top", files)
    kept, rejected, snapshot = read(data[: len(data) // 2])
    assert 0 < len(kept) < 20
    rest = rejected[""]
    assert rest.reason == "truncated-archive" and "the rest of the repository" in rest.detail
    assert rest.id == RepoFile.make_id("github", "o/r", "", "c" * 40)
    assert snapshot.files == len(kept)


def test_corrupt_archive_is_one_rejection():
    kept, rejected, _ = read(b"this is not gzip at all")
    assert not kept and rejected[""].reason in ("corrupt-archive", "truncated-archive")


def test_decompression_bomb_stops_at_the_uncompressed_limit():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("top/"), None)
        for i in range(5):
            info = tarfile.TarInfo(f"top/zeros{i}.txt")
            info.size = 2_000_000
            tar.addfile(info, io.BytesIO(bytes(info.size)))
    bomb = gzip.compress(raw.getvalue())
    assert len(bomb) < 100_000
    kept, rejected, _ = read(bomb, limits=ArchiveLimits(max_uncompressed_bytes=3_000_000), max_file_bytes=10**7)
    assert rejected[""].reason == "archive-too-large"


def test_member_count_limit_rejects_the_rest():
    data = make_tarball("top", {f"f{i}.py": b"x\n" for i in range(10)})
    kept, rejected, _ = read(data, limits=ArchiveLimits(max_members=5))
    assert len(kept) == 4  # the top directory is the first of the five entries
    assert rejected[""].reason == "too-many-members"


def test_license_comes_from_the_archive_when_the_api_has_none():
    data = make_tarball("top", {"LICENSE": MIT, "src/a.py": b"a = 1\n"})
    files, _, snapshot = read(data, info=RepoInfo("gitlab", "g/p", "d" * 40, None, 3, "gitlab"), max_file_bytes=10_000)
    assert files["src/a.py"].license == "MIT" == snapshot.license


def test_reading_is_deterministic():
    data = make_tarball("top", {"a.py": b"a\n", "b/c.py": b"c\n"})
    assert list(read_archive(INFO, data, LIMITS, 1000)) == list(read_archive(INFO, data, LIMITS, 1000))
