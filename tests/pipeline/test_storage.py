"""Directory operations mean the same on local disk and on Cloud Storage (a GCS API server on 127.0.0.1)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems

from infra import storage
from infra.version import MANIFEST, VersionStore

FILES = {"x.json": b"{}", "b/y.bin": b"\x00\x01", "b/c/z.txt": "ünïcode".encode(), "b/not-gzip.gz": b"plain"}


@pytest.fixture(params=["local", "gcs"])
def root(request, tmp_path) -> str:
    return str(tmp_path) if request.param == "local" else request.getfixturevalue("gcs")


def write_tree(directory: str) -> None:
    for rel, data in FILES.items():
        storage.write_bytes(storage.join(directory, rel), data)


def read_tree(directory: str) -> dict[str, bytes]:
    return {rel: storage.read_bytes(storage.join(directory, rel)) for rel in storage.list_files(directory)}


def test_list_move_copy_delete(root):
    a, moved, copied = (storage.join(root, n) for n in ("a", "moved", "copied"))
    write_tree(a)
    assert storage.list_files(a) == sorted(FILES)
    assert storage.list_children(a) == ["b", "x.json"]
    assert storage.is_dir(a) and not storage.is_dir(moved)

    storage.write_bytes(storage.join(moved, "stale.txt"), b"old")  # a move replaces the target whole
    storage.move_tree(a, moved, last=("x.json",))
    assert read_tree(moved) == FILES
    assert not storage.is_dir(a) and storage.list_children(root) == ["moved"]

    storage.copy_tree(moved, copied)
    assert read_tree(copied) == read_tree(moved) == FILES

    storage.delete_tree(moved)
    storage.delete_tree(moved)  # nothing there is not an error
    assert not storage.is_dir(moved) and storage.list_files(moved) == []
    assert storage.list_children(storage.join(root, "nothing")) == []


def test_copy_between_local_disk_and_cloud_storage(tmp_path, gcs):
    local = str(tmp_path / "tree")
    write_tree(local)
    storage.copy_tree(local, storage.join(gcs, "up"))
    storage.copy_tree(storage.join(gcs, "up"), str(tmp_path / "down"))
    assert read_tree(str(tmp_path / "down")) == FILES


def test_local_copy_of_a_cloud_folder_fetches_what_is_asked_and_goes_away(gcs):
    write_tree(gcs)
    with storage.LocalCopy(gcs, fetch=("b", "x.json", "missing")) as local:
        assert os.path.isdir(local) and not local.startswith("gs://")
        assert read_tree(local) == FILES
    assert not os.path.exists(local)


def test_local_copy_of_a_local_folder_is_the_folder(tmp_path):
    with storage.LocalCopy(str(tmp_path), fetch=("b",)) as local:
        assert local == str(tmp_path)
    assert tmp_path.is_dir()


def test_parquet_batches_read_from_either_store(root):
    path = storage.join(root, "t.parquet")
    with FileSystems.create(path) as f:
        pq.write_table(pa.table({"id": [f"d{i}" for i in range(10)], "n": list(range(10))}), f)
    batches = list(storage.parquet_batches(path, ["id"], 4))
    assert [b.num_rows for b in batches] == [4, 4, 2]
    assert sum((b.column("id").to_pylist() for b in batches), []) == [f"d{i}" for i in range(10)]


def test_version_store_treats_a_version_without_manifest_as_cut_short(root):
    store = VersionStore(root, "ds")
    version, staging = store.begin(None, overwrite=False)
    assert version == "v0001"
    write_tree(staging)
    storage.write_bytes(storage.join(staging, MANIFEST), b"{}")
    store.commit(staging, version)
    assert store.is_complete("v0001") and not storage.is_dir(staging)
    assert storage.list_files(store.path("v0001")) == sorted([*FILES, MANIFEST])

    write_tree(store.path("v0002"))  # what a commit cut short leaves on an object store: no manifest
    write_tree(store.staging("v0003"))
    if storage.is_local(root):  # a local commit is one rename: a folder without a manifest is not ours to remove
        assert store.clean_incomplete() == [".v0003.partial"]
        assert storage.list_children(store.dataset_dir) == ["v0001", "v0002"]
    else:
        assert store.clean_incomplete() == [".v0003.partial", "v0002"]
        assert storage.list_children(store.dataset_dir) == ["v0001"]
        assert store.next_version() == "v0002"
