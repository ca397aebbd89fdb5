"""The version store on versions a fixture writes, without Beam: what a run finds and tidies first.

A run, holding the dataset's lock, finishes the object-store commits a killed run left
half done and removes what runs cut short left (`pipeline.run.tidy_dataset`). These tests
plant those leftovers around a version written here (documents, a manifest with every
file's hashes) and call that step; `tests/pipeline/test_versions.py` keeps one killed
`code-corpus run` to show the CLI does it before its own work.
"""

from __future__ import annotations

import logging
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra import storage
from infra.verify import verify_version
from infra.version import MANIFEST, MANIFEST_FORMAT, VersionError, VersionStore, write_manifest
from pipeline.run import tidy_dataset
from pipeline.stages import file_entries
from schemas import arrow
from tests.conftest import SAMPLE_CONFIG, run_cli

DATASET = "sample"


def write_version(root: str, version: str = "v0001", shards: int = 4, ids: list[str] | None = None, **manifest) -> str:
    """`<root>/sample/<version>`: documents/ in `shards` files (of `ids`, by default three a shard) and a
    manifest that lists every file, plus the `manifest` entries given."""
    path = os.path.join(root, DATASET, version)
    os.makedirs(os.path.join(path, "documents"))
    ids = ids if ids is not None else [f"{n}-{i}" for n in range(shards) for i in range(3)]
    for n in range(shards):
        rows = [
            {**dict.fromkeys(arrow.DOCUMENT.names), "id": i, "kind": "code", "text": f"# {i}\n", "tags": [], "meta": []}
            for i in ids[n::shards]
        ]
        shard = os.path.join(path, "documents", f"part-{n:05d}-of-{shards:05d}.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=arrow.DOCUMENT), shard)
    files = file_entries(path, os.path.join(path, "documents"))
    for n in range(shards):  # the rows, as the document writers record them
        files[f"documents/part-{n:05d}-of-{shards:05d}.parquet"]["rows"] = len(ids[n::shards])
    head = {"format": MANIFEST_FORMAT, "name": DATASET, "version": version, "stages": ["corpus"], "documents": len(ids)}
    write_manifest(path, {**head, **manifest, "files": files})
    return path


@pytest.fixture
def cloud_version(gcs, tmp_path) -> str:
    """A version written here and copied to this test's folder of the bucket: `<gcs>/sample/v0001`."""
    remote = f"{gcs}/{DATASET}/v0001"
    storage.copy_tree(write_version(str(tmp_path)), remote)
    assert verify_version(remote).ok
    return remote


def test_commit_cut_short_on_cloud_storage_is_not_a_version_and_is_cleaned(gcs, cloud_version, caplog):
    v1 = cloud_version
    # An object store moves a version object by object, manifest last: a kill part-way leaves this.
    for name in storage.list_files(v1)[:3]:
        storage.write_bytes(f"{gcs}/{DATASET}/v0002/{name}", storage.read_bytes(f"{v1}/{name}"))
    storage.write_bytes(f"{gcs}/{DATASET}/.v0003.partial/documents/part-00000-of-00002.parquet", b"half")

    proc = run_cli("inspect", f"{gcs}/{DATASET}/v0002", check=False)
    assert proc.returncode != 0 and "not a complete dataset version" in proc.stderr

    store = VersionStore(gcs, DATASET)
    assert store.next_version() == "v0004"  # what a killed run left is never a name to reuse blindly
    with caplog.at_level(logging.WARNING):
        tidy_dataset(store)
    assert "removing v0002" in caplog.text and "removing .v0003.partial" in caplog.text
    assert storage.list_children(f"{gcs}/{DATASET}") == ["v0001"]
    assert store.next_version() == "v0002" and verify_version(v1).ok


def test_commit_cut_short_after_the_run_finished_is_completed_not_lost(gcs, cloud_version, caplog):
    v1, staged = cloud_version, f"{gcs}/{DATASET}/.v0001.partial"
    expected = {n: storage.read_bytes(f"{v1}/{n}") for n in storage.list_files(v1)}
    # Turn the version back into a commit cut short: the manifest and half the objects still
    # staged, and an object an overwritten version left behind.
    for name in [MANIFEST, *sorted(n for n in expected if n != MANIFEST)[::2]]:
        storage.move_tree(f"{v1}/{name}", f"{staged}/{name}")
    storage.write_bytes(f"{v1}/documents/part-00007-of-00008.parquet", b"left behind")
    assert run_cli("inspect", v1, check=False).returncode != 0

    with caplog.at_level(logging.WARNING):
        tidy_dataset(VersionStore(gcs, DATASET))
    assert "finishing the commit of v0001" in caplog.text
    assert storage.list_children(f"{gcs}/{DATASET}") == ["v0001"]
    assert {n: storage.read_bytes(f"{v1}/{n}") for n in storage.list_files(v1) if n != "report.html"} == expected
    assert storage.exists(f"{v1}/report.html")  # the finished version gets the report its run did not write
    assert verify_version(v1).ok


def test_on_local_disk_a_staging_folder_goes_and_a_version_folder_stays(tmp_path, caplog):
    """Locally a commit is one rename: a version folder without a manifest is not a cut-short commit."""
    v1 = write_version(str(tmp_path))
    store = VersionStore(str(tmp_path), DATASET)
    storage.write_bytes(os.path.join(store.staging("v0002"), "documents", "part-00000-of-00001.parquet"), b"half")
    storage.write_bytes(os.path.join(store.path("v0003"), "notes.txt"), b"someone's")

    with caplog.at_level(logging.WARNING):
        tidy_dataset(store)
    assert "removing .v0002.partial" in caplog.text and "v0003" not in caplog.text
    assert storage.list_children(os.path.join(str(tmp_path), DATASET)) == ["v0001", "v0003"]
    assert verify_version(v1).ok


def test_the_next_run_makes_a_new_version_and_never_overwrites(tmp_path):
    write_version(str(tmp_path))
    store = VersionStore(str(tmp_path), DATASET)
    assert store.begin(None, overwrite=False) == ("v0002", store.staging("v0002"))
    with pytest.raises(VersionError, match="already exists; pass --overwrite"):
        store.begin("v0001", overwrite=False)
    # The CLI refuses the same before any work (the sample config's dataset is `sample`).
    clash = run_cli("run", "--config", SAMPLE_CONFIG, "--out", str(tmp_path), "--dataset-version", "v0001", check=False)
    assert clash.returncode != 0 and "--overwrite" in clash.stderr
    assert verify_version(store.path("v0001")).ok
