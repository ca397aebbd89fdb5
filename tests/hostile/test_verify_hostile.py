"""`code-corpus verify` against versions edited by hand or by accident: it fails, naming what differs.

Before, an extra shard in documents/ was a note (exit 0) while the tokenizer, binarize,
diff and report read it by glob; a manifest whose file list was emptied passed as "0 files
checked"; edited counts and row numbers passed; a manifest that did not parse gave a
traceback that named no file; a FIFO or a link to /dev/zero in a version hung it. Each
test builds a small real version (Parquet shards written and hashed as the pipeline's
writers do, and its manifest) and runs `verify` bounded in time: on a thread of the test
process, and once in a process of its own, as a user runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from infra.verify import verify_version
from infra.version import document_paths, write_manifest
from infra.writers import write_parquet_hashed
from schemas import arrow
from schemas.records import Document, Rejected
from tests.conftest import ROOT, run_cli
from tokenizer_training.binarize import row_groups_of
from tokenizer_training.sample import document_files

BOUND = 60  # seconds any verify may take on these few small files; more is a hang


def build_version(root) -> str:
    """A committed version: three documents in two shards, one rejection, and its manifest."""
    version = root / "sample" / "v0001"
    docs = [Document(id=f"d{i}", kind="code", text=f"print({i})\n", source="local", repo="r", path=f"{i}.py") for i in range(3)]
    shards = {"documents/part-00000-of-00002.parquet": docs[:2], "documents/part-00001-of-00002.parquet": docs[2:]}
    shards["rejected/part-00000-of-00001.parquet"] = [Rejected("x", "read", "binary", source="local", repo="r", path="x.bin")]
    files = {}
    for rel, records in shards.items():
        path = str(version / rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        schema = arrow.REJECTED if rel.startswith("rejected/") else arrow.DOCUMENT
        info = write_parquet_hashed(path, schema, [r.to_row() for r in records]).info(str(version), path, len(records))
        files[info.pop("path")] = info
    write_manifest(str(version), {"name": "sample", "version": "v0001", "documents": 3, "rejected": 1, "files": files})
    return str(version)


def verify_cli(version: str, *flags: str) -> subprocess.CompletedProcess:
    """`code-corpus verify` on a thread; a hang fails the test (the thread is left behind) instead of stopping the suite."""
    done: list[subprocess.CompletedProcess] = []
    worker = threading.Thread(target=lambda: done.append(run_cli("verify", version, *flags, check=False)), daemon=True)
    worker.start()
    worker.join(BOUND)
    assert done, f"verify did not finish in {BOUND}s"
    assert "Traceback" not in done[0].stderr, done[0].stderr
    return done[0]


def edit_manifest(version: str, change) -> None:
    path = os.path.join(version, "manifest.json")
    manifest = json.load(open(path))
    change(manifest)
    write_manifest(version, manifest)


@pytest.fixture
def version(tmp_path) -> str:
    return build_version(tmp_path)


def test_an_intact_version_passes_both_checks(version):
    for flags in ((), ("--quick",)):
        proc = verify_cli(version, *flags)
        assert proc.returncode == 0 and ": ok, 3 files checked" in proc.stdout, proc.stdout


@pytest.mark.parametrize("flags", [(), ("--quick",)])
def test_an_unlisted_shard_fails_verify_and_no_later_stage_reads_it(version, flags):
    extra = os.path.join(version, "documents", "part-00002-of-00002.parquet")
    shutil.copy(os.path.join(version, "documents", "part-00000-of-00002.parquet"), extra)
    proc = verify_cli(version, *flags)
    assert proc.returncode == 1 and "unlisted: documents/part-00002-of-00002.parquet" in proc.stdout, proc.stdout
    assert extra not in document_paths(version) and extra not in document_files(version)
    assert len(document_paths(version)) == 2 and {path for path, _ in row_groups_of(version)} == set(document_paths(version))


def test_a_hidden_file_in_a_data_folder_is_unlisted_too(version):
    open(os.path.join(version, "documents", ".part-x.parquet"), "wb").close()
    proc = verify_cli(version)
    assert proc.returncode == 1 and "unlisted: documents/.part-x.parquet" in proc.stdout


def test_a_manifest_whose_file_list_was_emptied_fails(version):
    edit_manifest(version, lambda m: m.update(files={}))
    proc = verify_cli(version)
    assert proc.returncode == 1 and "the manifest lists no files" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda m: m.update(documents=4), "counts: the manifest says documents: 4"),
        (lambda m: m.update(rejected=0), "counts: the manifest says rejected: 0"),
        (lambda m: m["files"]["documents/part-00001-of-00002.parquet"].update(rows="1"), "counts: the manifest says documents"),
    ],
)
def test_edited_totals_fail_both_checks(version, change, named):
    edit_manifest(version, change)
    for flags in ((), ("--quick",)):
        proc = verify_cli(version, *flags)
        assert proc.returncode == 1 and named in proc.stdout, proc.stdout


def test_edited_row_numbers_fail_against_the_files_own_footers(version):
    """Rows moved between two entries keep the total; the full check reads each footer's count."""

    def move_a_row(manifest):
        manifest["files"]["documents/part-00000-of-00002.parquet"]["rows"] = 1
        manifest["files"]["documents/part-00001-of-00002.parquet"]["rows"] = 2

    edit_manifest(version, move_a_row)
    proc = verify_cli(version)
    assert proc.returncode == 1, proc.stdout
    assert "rows: documents/part-00000-of-00002.parquet holds 2 rows, the manifest says 1" in proc.stdout
    assert "rows: documents/part-00001-of-00002.parquet holds 1 rows, the manifest says 2" in proc.stdout


@pytest.mark.parametrize(
    "content", [b"{", b'{"files": [1, 2]}', b"[]", b"\xff\xfe not utf-8", b""], ids=["cut", "list", "array", "bytes", "empty"]
)
def test_a_manifest_that_does_not_parse_is_named(version, content):
    with open(os.path.join(version, "manifest.json"), "wb") as f:
        f.write(content)
    proc = verify_cli(version)
    assert proc.returncode == 1 and os.path.join(version, "manifest.json") in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") and "manifest" in proc.stderr


def make_special(kind: str, path: str) -> None:
    os.remove(path) if os.path.lexists(path) else None
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to /dev/zero":
        os.symlink("/dev/zero", path)
    elif kind == "link to a shard":
        os.symlink(os.path.join(os.path.dirname(path), "part-00000-of-00002.parquet"), path)
    else:
        os.mknod(path, 0o600 | 0o020000, os.makedev(1, 5))  # a character device: /dev/zero's numbers


SPECIAL = ["fifo", "link to /dev/zero", "link to a shard"] + (["device"] if os.geteuid() == 0 else [])


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("listed", [True, False], ids=["in-place-of-a-listed-shard", "unlisted"])
def test_special_files_are_rejected_without_being_opened(version, kind, listed):
    name = "part-00001-of-00002.parquet" if listed else "part-00009-of-00002.parquet"
    make_special(kind, os.path.join(version, "documents", name))
    for flags in ((), ("--quick",)):
        proc = verify_cli(version, *flags)
        assert proc.returncode == 1, proc.stdout
        named = f"not a regular file: documents/{name}" if listed else f"unlisted: documents/{name}"
        assert named in proc.stdout, proc.stdout


@pytest.mark.slow
def test_a_fifo_and_a_link_to_dev_zero_end_the_command_line_verify_quickly(version):
    """As a user runs it: a process of its own, which a hang would keep past the bound."""
    os.mkfifo(os.path.join(version, "documents", "part-00001-of-00002.parquet.fifo"))
    os.symlink("/dev/zero", os.path.join(version, "rejected", "zero"))
    command = [sys.executable, "-m", "pipeline.cli", "verify", version]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=BOUND, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "unlisted: documents/part-00001-of-00002.parquet.fifo (fifo)" in proc.stdout
    assert "unlisted: rejected/zero (symlink)" in proc.stdout


def test_verify_in_process_reports_every_problem_at_once(version):
    os.mkfifo(os.path.join(version, "documents", "extra"))
    os.remove(os.path.join(version, "rejected", "part-00000-of-00001.parquet"))
    edit_manifest(version, lambda m: m.update(documents=9))
    result = verify_version(version)
    assert not result.ok and result.checked == 3
    assert result.problems == [
        "missing: rejected/part-00000-of-00001.parquet",
        "unlisted: documents/extra (fifo): not in the manifest, so not part of the version; remove it",
        "counts: the manifest says documents: 9, its documents/ files list 3 rows",
    ]
