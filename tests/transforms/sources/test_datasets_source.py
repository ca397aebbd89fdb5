"""Datasets as a source: The Stack's schema and custom mappings, in Parquet and JSON Lines (plain, .gz, .zst)."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard

from infra import storage
from schemas.config import ConfigError, load_config
from schemas.datasets_config import HubDataset
from schemas.records import Rejected, RepoFile, record_id
from tests.conftest import DIRECT_MODES, EXAMPLES, run_cli
from tests.transforms.sources.hub_fake import COMMIT, FakeHub
from tests.transforms.sources.stack_files import stack_rows, stack_schema, write_parquet
from transforms.record_fn import run_record_fn
from transforms.sources.datasets.hub import list_hub, split_files
from transforms.sources.datasets.rows import RowMapping, line_pieces, row_record
from transforms.sources.datasets.source import (
    DatasetFile,
    DatasetUnit,
    ReadDatasetUnitFn,
    read_datasets,
    row_mapping,
    split_file,
)
from transforms.sources.registry import network_sources

V1 = RowMapping(
    "stack",
    (
        ("content", "content"),
        ("id", "hexsha"),
        ("license", "max_stars_repo_licenses"),
        ("path", "max_stars_repo_path"),
        ("repo", "max_stars_repo_name"),
        ("revision", "max_stars_repo_head_hexsha"),
        ("stars", "max_stars_count"),
    ),
    "github",
)
CUSTOM = {"content": "text", "path": "file", "repo": "project", "stars": "stars", "license": "spdx"}


# ---- rows → records ------------------------------------------------------------------------


def test_a_stack_row_becomes_a_repo_file_with_its_license_stars_and_identity():
    row = stack_rows(files_per_package=1)[0]
    record = row_record(row, V1, "f row 0", 1_000_000)
    assert isinstance(record, RepoFile)
    assert (record.source, record.repo, record.path, record.origin) == (
        "dataset",
        "yaml/pyyaml",
        row["max_stars_repo_path"],
        "github",
    )
    assert (record.license, record.stars, record.revision) == ("MIT", 2400, row["max_stars_repo_head_hexsha"])
    assert record.content == row["content"] and record.size == len(row["content"].encode())
    assert record.id == record_id("dataset", "stack", "f row 0")  # the row's file and place: unique per row read


@pytest.mark.parametrize(
    "change, reason, detail",
    [
        ({"content": None}, "null-column", "content (content) is null"),
        ({"content": 12}, "wrong-type", "content is int"),
        ({"max_stars_repo_path": None}, "null-column", "max_stars_repo_path (path) is null"),
        ({"max_stars_count": "many"}, "wrong-type", "not an integer"),
        ({"max_stars_repo_licenses": [3]}, "wrong-type", "not a string"),
        ({"content": "x" * 101}, "too-large", "101 bytes > 100"),
        ({"content": "bad \ud800 surrogate"}, "not-utf8", "unpaired surrogate"),
        ({"content": b"caf\xe9"}, "not-utf8", "at byte 3"),
        ({"content": "a\0b"}, "binary", ""),
    ],
)
def test_bad_rows_become_read_rejections_with_their_reason(change, reason, detail):
    row = {**stack_rows(files_per_package=1)[0], **change}
    record = row_record(row, V1, "f row 0", 100 if reason == "too-large" else 1_000_000)
    assert isinstance(record, Rejected) and record.stage == "read"
    assert record.reason == reason and detail in record.detail
    assert record.detail.startswith("f row 0")


def test_a_missing_column_in_a_row_is_named():
    row = stack_rows(files_per_package=1)[0]
    del row["max_stars_repo_name"]
    record = row_record(row, V1, "f line at byte 9", 1_000_000)
    assert record.reason == "missing-column" and "max_stars_repo_name" in record.detail
    assert record.id == record_id("dataset", "stack", "f line at byte 9")


def test_licenses_join_with_and_and_whole_float_stars_count():
    row = {**stack_rows(files_per_package=1)[0], "max_stars_repo_licenses": ["MIT", "Apache-2.0", "MIT"], "max_stars_count": 7.0}
    record = row_record(row, V1, "w", 1_000_000)
    assert record.license == "Apache-2.0 AND MIT" and record.stars == 7
    assert row_record({**row, "max_stars_repo_licenses": []}, V1, "w", 1_000_000).license is None


# ---- JSON Lines byte ranges ------------------------------------------------------------------


def lines_of_ranges(data: bytes, cuts: list[int], max_row_bytes: int = 1 << 20) -> list[tuple[int, bytes | None]]:
    found = []
    for start, end in zip(cuts, cuts[1:]):
        blocks = (data[i : i + 3] for i in range(max(start - 1, 0), len(data), 3))  # small blocks: every seam is crossed
        found += list(line_pieces(blocks, start, end, max_row_bytes))
    return found


def test_byte_ranges_read_every_line_once_wherever_they_are_cut():
    data = b'{"a": 1}\n\n{"b": 22}\r\n   \n{"c": 333}'  # a blank line, CRLF, a whitespace line, no final newline
    expected = [(0, b'{"a": 1}'), (10, b'{"b": 22}\r'), (25, b'{"c": 333}')]
    assert lines_of_ranges(data, [0, len(data)]) == expected
    for cut in range(len(data) + 1):
        assert lines_of_ranges(data, [0, cut, len(data)]) == expected, cut
    for a in range(1, len(data)):
        for b in range(a, len(data)):
            assert lines_of_ranges(data, [0, a, b, len(data)]) == expected, (a, b)


def test_a_line_over_max_row_bytes_is_skipped_unread():
    data = b'{"a": 1}\n' + b'{"long": "' + b"x" * 5000 + b'"}\n{"c": 3}\n'
    assert lines_of_ranges(data, [0, len(data)], max_row_bytes=1024) == [(0, b'{"a": 1}'), (9, None), (9 + 5013, b'{"c": 3}')]


# ---- work units ----------------------------------------------------------------------------


def test_units_read_row_groups_and_ranges_and_a_damaged_file_is_one_rejection(tmp_path):
    rows = stack_rows(files_per_package=2)
    write_parquet(rows, str(tmp_path / "a.parquet"), row_group_rows=3)
    parquet = DatasetFile("stack", str(tmp_path / "a.parquet"), os.path.getsize(tmp_path / "a.parquet"), "parquet", "a.parquet")
    groups = -(-len(rows) // 3)
    assert split_file(parquet, 1 << 20) == [DatasetUnit(parquet)]  # a small file is one unit: its footer read once, there
    meta = pq.ParquetFile(tmp_path / "a.parquet").metadata
    sizes = [meta.row_group(g).total_byte_size for g in range(groups)]
    joined = split_file(parquet, 2 * max(sizes))  # a larger file: its groups joined into runs of at most range_bytes
    runs = [u.row_groups for u in joined]
    assert runs[0][0] == 0 and runs[-1][1] == groups and all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
    assert 1 < len(runs) < groups and all(sum(sizes[slice(*run)]) <= 2 * max(sizes) for run in runs)
    assert [u.first_row for u in joined] == [3 * run[0] for run in runs]
    units = split_file(parquet, 1)  # a unit per group when each is over range_bytes
    assert [(u.row_groups, u.first_row) for u in units] == [((g, g + 1), 3 * g) for g in range(groups)]
    fn = ReadDatasetUnitFn({"stack": V1}, {"stack": _section(tmp_path)}, 1_000_000)
    read = [r for u in units for r in fn(u)]
    assert [r.path for r in read] == [r["max_stars_repo_path"] for r in rows]
    assert read[4].id == record_id("dataset", "stack", "a.parquet row 4 (row group 1)")
    assert [r.id for r in read] == [r.id for u in split_file(parquet, 1 << 20) for r in fn(u)]  # ids do not depend on units

    (tmp_path / "cut.parquet").write_bytes((tmp_path / "a.parquet").read_bytes()[:-100])
    damaged = DatasetFile("stack", str(tmp_path / "cut.parquet"), 10, "parquet", "cut.parquet")
    (only,) = [r for u in split_file(damaged, 1 << 20) for r in fn(u)]
    assert only.reason == "unreadable-file" and "cut.parquet" in only.detail


def _section(tmp_path):
    return load_config(
        _write_config(tmp_path, [{"name": "stack", "preset": "the-stack-v1", "paths": ["*.parquet"]}])
    ).sources.datasets[0]


def _write_config(tmp_path, datasets, **extra) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "ds", "stages": ["corpus"], "sources": {"datasets": datasets}, **extra}))
    return str(path)


# ---- the mapping is checked before any work ---------------------------------------------------


@pytest.mark.parametrize(
    "dataset, message",
    [
        (
            {"name": "s", "preset": "the-stack-v1", "paths": ["data.jsonl"], "columns": {"content": "text"}},
            "sources.datasets[0].columns.content: column 'text' is not in",
        ),
        (
            {"name": "s", "preset": "the-stack-v2", "paths": ["data.parquet"]},
            "sources.datasets[0].columns.path: column 'path' (preset the-stack-v2) is not in",
        ),
        (
            {"name": "s", "columns": {"content": "content", "path": "nope"}, "paths": ["data.parquet"]},
            "sources.datasets[0].columns.path: column 'nope' is not in",
        ),
        ({"name": "s", "columns": {"content": "content"}, "paths": ["data.parquet"]}, "columns.path: no column for ['path']"),
        ({"name": "s", "preset": "the-stack-v3", "paths": ["data.parquet"]}, "preset must be one of"),
        (
            {"name": "s", "preset": "the-stack-v1", "paths": ["missing/*.parquet"]},
            "sources.datasets[0].paths[0]: no file matches",
        ),
        (
            {"name": "s", "preset": "the-stack-v1", "paths": ["data.parquet"], "hub": {"repo_id": "bigcode/the-stack"}},
            "give paths (local or gs:// files) or hub",
        ),
        ({"name": "s", "preset": "the-stack-v1", "paths": ["data.parquet"], "colums": {}}, "unknown key(s) ['colums']"),
    ],
)
def test_mapping_errors_fail_before_any_work_naming_the_key(tmp_path, dataset, message):
    rows = stack_rows(files_per_package=1)
    write_parquet(rows, str(tmp_path / "data.parquet"))
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ConfigError) as e:
        network_sources(load_config(_write_config(tmp_path, [dataset])), str(tmp_path / "out"))
    assert message in str(e.value)


def test_two_datasets_of_one_name_are_refused(tmp_path):
    d = {"name": "s", "preset": "the-stack-v1", "paths": ["x.parquet"]}
    with pytest.raises(ConfigError, match=r"datasets\[1\].name: 's' is already datasets\[0\].name"):
        load_config(_write_config(tmp_path, [d, d]))


# ---- whole runs --------------------------------------------------------------------------------


def write_datasets(root) -> tuple[list[dict], list[dict]]:
    """The Stack v1 rows as Parquet (two files, row groups of 4), JSONL, .jsonl.gz and .jsonl.zst;
    custom-schema rows with a bad row of each kind as JSONL."""
    rows = stack_rows(files_per_package=5)
    parts = [rows[i::5] for i in range(5)]
    write_parquet(parts[0], str(root / "stack" / "train-00000-of-00002.parquet"), row_group_rows=4)
    write_parquet(parts[1], str(root / "stack" / "train-00001-of-00002.parquet"), row_group_rows=4)
    lines = [("".join(json.dumps(r) + "\n" for r in part)).encode() for part in parts[2:]]
    (root / "stack" / "extra-0.jsonl").write_bytes(lines[0])
    (root / "stack" / "extra-1.jsonl.gz").write_bytes(gzip.compress(lines[1], mtime=0))
    (root / "stack" / "extra-2.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines[2]))
    custom = [
        {
            "text": "def first():\n    return 'custom dataset one'\n",
            "file": "src/one.py",
            "project": "acme/tools",
            "stars": 4,
            "spdx": "MIT",
        },
        {
            "text": "def second():\n    return 'custom dataset two'\n",
            "file": "src/two.py",
            "project": "acme/tools",
            "stars": 4,
            "spdx": "MIT",
        },
        {"text": None, "file": "src/null.py", "project": "acme/tools", "stars": 4, "spdx": "MIT"},
        {"text": ["not", "text"], "file": "src/list.py", "project": "acme/tools", "stars": 4, "spdx": "MIT"},
        {"file": "src/nocontent.py", "project": "acme/tools", "stars": 4, "spdx": "MIT"},
        {"text": "x = 1\n" * 1200, "file": "src/big.py", "project": "acme/tools", "stars": 4, "spdx": "MIT"},
    ]
    body = "".join(json.dumps(r) + "\n" for r in custom) + '{"text": "unterminated\n' + "[1, 2]\n"
    (root / "custom.jsonl").write_text(body)
    return rows, custom


def datasets_config(root, prefix: str = "") -> list[dict]:
    return [
        {"name": "the-stack", "preset": "the-stack-v1", "paths": [f"{prefix}stack/*"], "range_bytes": 4096},
        {"name": "custom", "columns": CUSTOM, "origin": "gitlab", "paths": [f"{prefix}custom.jsonl"]},
    ]


def read_rows(version, part: str) -> list[dict]:
    return [r for name in sorted(os.listdir(version / part)) for r in pq.read_table(version / part / name).to_pylist()]


RUN_SETTINGS = {"read": {"max_file_bytes": 6000}, "output": {"document_shards": 2}}


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory):
    """(data folder, stack rows, custom rows): the datasets of `write_datasets`, written once for the module."""
    root = tmp_path_factory.mktemp("datasets")
    return (root, *write_datasets(root))


def read_stage(config_path: str):
    """(the read stage's StageResult, the source's manifest entry) of a config's datasets, listed as the
    launcher lists them and each work unit read by the stage's RecordFn without Beam (the composite
    itself runs in test_stack_and_custom_datasets_run_through_the_incoder_stages)."""
    config = load_config(config_path)
    source = read_datasets(config.sources.datasets, config.resolve, config.read.max_file_bytes)
    mappings = {name: row_mapping(section) for name, section in source.sections.items()}
    units = [u for f in source.files for u in split_file(f, source.sections[f.dataset].range_bytes)]
    return run_record_fn(ReadDatasetUnitFn(mappings, source.sections, *source.sizes), units), source.summary()


@pytest.mark.slow
def test_stack_and_custom_datasets_run_through_the_incoder_stages(tmp_path, dataset_files):
    """One in-memory run of the whole corpus graph (the datasets composite on worker processes, and the
    same records there as here, is test_hub_token_secret's)."""
    root, rows, custom = dataset_files
    config = _write_config(tmp_path, datasets_config(root, prefix=f"{root}/"), **RUN_SETTINGS)
    run_cli("run", "--config", config, "--out", str(tmp_path / "out"), *DIRECT_MODES["in_memory"])
    version = tmp_path / "out" / "ds" / "v0001"
    manifest = json.loads((version / "manifest.json").read_text())
    read = manifest["counts"]["read"]
    assert read["in"] == len(rows) + len(custom) + 2 == read["kept"] + sum(read["rejected"].values())
    too_large = sum(len(r["content"].encode()) > 6000 for r in rows)
    assert read["rejected"] == {
        "null-column": 1,
        "wrong-type": 1,
        "missing-column": 1,
        "too-large": too_large + 1,
        "broken-json": 2,
    }
    lgpl = sum(r["max_stars_repo_name"] == "miurahr/py7zr" and len(r["content"].encode()) <= 6000 for r in rows)
    assert manifest["counts"]["license"]["rejected"].get("license", 0) == lgpl > 0

    documents = read_rows(version, "documents")
    by_path = {(d["repo"], d["path"]): d for d in documents}
    assert ("acme/tools", "src/one.py") in by_path and by_path[("acme/tools", "src/one.py")]["origin"] == "gitlab"
    stack = [d for d in documents if d["origin"] == "github"]
    assert {d["repo"] for d in stack} == {
        "yaml/pyyaml",
        "executablebooks/markdown-it-py",
        "psf/requests",
        "jupyter/nbformat",
        "joseph-fox/python-bloomfilter",
        "openai/human-eval",
    }
    assert all(d["star_bucket"] is not None for d in stack if d["stars"] is not None)
    assert manifest["star_buckets"]["repositories"] == 5  # human-eval has no star count
    requests_doc = next(d for d in stack if d["repo"] == "psf/requests")
    assert requests_doc["license"] == "Apache-2.0" and requests_doc["stars"] == 51000 and "dstars=" in requests_doc["text"]
    source = {d["name"]: d for d in manifest["source_datasets"]["datasets"]}
    assert source["the-stack"]["files"] == 5 and source["custom"]["files"] == 1
    rejected = {r["reason"]: r for r in read_rows(version, "rejected") if r["stage"] == "read"}
    assert rejected["null-column"]["path"] == "src/null.py" and rejected["broken-json"]["detail"].startswith(
        "custom.jsonl line at byte"
    )


def test_a_dataset_on_cloud_storage_reads_as_the_local_one(tmp_path, gcs, dataset_files):
    root = dataset_files[0]
    for rel in ["custom.jsonl", *(f"stack/{n}" for n in sorted(os.listdir(root / "stack")))]:
        storage.write_bytes(f"{gcs}/data/{rel}", (root / rel).read_bytes())
    local, local_entry = read_stage(_write_config(tmp_path, datasets_config(root, prefix=f"{root}/"), **RUN_SETTINGS))
    remote, remote_entry = read_stage(_write_config(tmp_path, datasets_config(root, prefix=f"{gcs}/data/"), **RUN_SETTINGS))
    assert remote.kept == local.kept and remote.rejected == local.rejected and remote.counts == local.counts
    assert len(local.kept) > 20 and local.rejected  # the Stack's rows and the custom file's bad rows, read from gs://
    digests = [[d["files_sha256"] for d in entry["datasets"]] for entry in (local_entry, remote_entry)]
    assert digests[0] == digests[1]


def test_parquet_with_large_string_and_a_missing_column_in_a_later_file(tmp_path):
    rows = stack_rows(files_per_package=1)[:3]
    schema = pa.schema([f if f.name != "content" else pa.field("content", pa.large_string()) for f in stack_schema()])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=stack_schema()).drop_columns(["max_stars_count"]), tmp_path / "b.parquet")
    config = load_config(_write_config(tmp_path, [{"name": "stack", "preset": "the-stack-v1", "paths": ["*.parquet"]}]))
    source = read_datasets(config.sources.datasets, config.resolve, 1_000_000)
    fn = ReadDatasetUnitFn({"stack": V1}, {"stack": config.sources.datasets[0]}, 1_000_000)
    read = [r for f in source.files for u in split_file(f, 1 << 20) for r in fn(u)]
    assert [type(r).__name__ for r in read] == ["RepoFile"] * 3 + ["Rejected"] * 3
    assert {r.reason for r in read[3:]} == {"missing-column"} and "max_stars_count" in read[3].detail


@pytest.fixture
def hub_env(monkeypatch):
    """Serve a FakeHub to huggingface_hub (HF_ENDPOINT) while a test runs: call it with the repo and files."""
    hubs = []

    def serve(repo_id: str, files: dict[str, bytes], revision: str = "main") -> FakeHub:
        hubs.append(FakeHub(repo_id, files, revision=revision))
        monkeypatch.setenv("HF_ENDPOINT", hubs[-1].url)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        return hubs[-1]

    yield serve
    for hub in hubs:
        hub.close()


STACK_README = b"---\nannotations_creators: []\nlicense:\n- other\npretty_name: The-Stack\n---\n# The Stack\n"


def test_the_stack_on_the_hub_reads_every_row_at_the_resolved_commit(tmp_path, hub_env):
    """The Stack's real layout (data/<lang>/data-0000N-of-0000M.parquet: no split in the names) through
    huggingface_hub's own HfFileSystem: every row read, record for record what the same files on local disk give."""
    rows = stack_rows(files_per_package=3)
    write_parquet(rows[::2], str(tmp_path / "local" / "data-00000-of-00002.parquet"), row_group_rows=4)
    write_parquet(rows[1::2], str(tmp_path / "local" / "data-00001-of-00002.parquet"), row_group_rows=4)
    files = {f"data/python/{n}": (tmp_path / "local" / n).read_bytes() for n in sorted(os.listdir(tmp_path / "local"))}
    files |= {
        "data/java/data-00000-of-00001.parquet": b"not read",
        "README.md": STACK_README,
        ".gitattributes": b"*.parquet lfs\n",
    }
    hub = hub_env("bigcode/the-stack-dedup", files, revision="v1.1")
    on_hub = {
        "name": "stack",
        "preset": "the-stack-v1",
        "hub": {"repo_id": "bigcode/the-stack-dedup", "data_dir": "data/python", "revision": "v1.1"},
    }
    local = {"name": "stack", "preset": "the-stack-v1", "paths": ["local/*.parquet"]}
    (tmp_path / "hub").mkdir()
    read, summary = read_stage(_write_config(tmp_path / "hub", [on_hub]))
    on_disk, _ = read_stage(_write_config(tmp_path, [local]))
    assert read.kept == on_disk.kept and not read.rejected and not on_disk.rejected
    assert read.counts["in"] == len(read.kept) == len(rows)
    assert sorted(f.path for f in read.kept) == sorted(r["max_stars_repo_path"] for r in rows)
    (entry,) = summary["datasets"]
    assert entry["hub"]["revision"] == "v1.1" and entry["hub"]["commit"] == COMMIT and entry["hub"]["config"] is None
    assert entry["file_list"] == [
        {"name": n, "size": len(files[f"data/python/{n}"])}
        for n in ("data-00000-of-00002.parquet", "data-00001-of-00002.parquet")
    ]
    fetched = {path for method, path, _ in hub.requests if "/resolve/" in path}
    at_commit = f"/datasets/bigcode/the-stack-dedup/resolve/{COMMIT}/"
    assert fetched == {at_commit + "README.md"} | {at_commit + f"data/python/data-0000{i}-of-00002.parquet" for i in (0, 1)}


CONFIGS_README = b"""---
license: mit
configs:
- config_name: default
  default: true
  data_files:
  - split: train
    path: "parts/train/*.jsonl.gz"
  - split: test
    path: parts/test.jsonl
- config_name: python
  data_dir: by-language
  data_files: "python/**/*.parquet"
---
# Code
"""


def test_a_hub_dataset_with_readme_configs_reads_every_row_of_the_chosen_config(tmp_path, hub_env):
    rows = stack_rows(files_per_package=2)
    write_parquet(rows[:5], str(tmp_path / "a.parquet"))
    lines = [("".join(json.dumps(r) + "\n" for r in part)).encode() for part in (rows[5:9], rows[9:12], rows[12:])]
    files = {
        "README.md": CONFIGS_README,
        "parts/train/0.jsonl.gz": gzip.compress(lines[0], mtime=0),
        "parts/train/1.jsonl.gz": gzip.compress(lines[1], mtime=0),
        "parts/train/notes.txt": b"not matched",
        "parts/test.jsonl": lines[2],
        "by-language/python/2024/a.parquet": (tmp_path / "a.parquet").read_bytes(),
        "by-language/java/a.parquet": b"not read",
    }
    hub_env("acme/code", files)

    def read(**hub):
        section = {"name": "code", "preset": "the-stack-v1", "hub": {"repo_id": "acme/code", **hub}}
        config = load_config(_write_config(tmp_path, [section]))
        source = read_datasets(config.sources.datasets, config.resolve, 1_000_000)
        fn = ReadDatasetUnitFn({"code": V1}, {"code": config.sources.datasets[0]}, 1_000_000)
        read = [r for f in source.files for u in split_file(f, 1 << 20) for r in fn(u)]
        assert all(isinstance(r, RepoFile) for r in read)
        return [f.name for f in source.files], sorted(r.path for r in read), source.summary()["datasets"][0]["hub"]

    names, paths, hub = read()
    assert names == ["0.jsonl.gz", "1.jsonl.gz"] and paths == sorted(r["max_stars_repo_path"] for r in rows[5:12])
    assert hub["commit"] == COMMIT and hub["config"] == "default"
    names, paths, _ = read(split="test")
    assert names == ["test.jsonl"] and paths == sorted(r["max_stars_repo_path"] for r in rows[12:])
    names, paths, hub = read(config="python", split="")
    assert names == ["a.parquet"] and paths == sorted(r["max_stars_repo_path"] for r in rows[:5]) and hub["config"] == "python"
    for hub, message in (
        ({"config": "rust"}, r"hub.config: 'rust' is not one of the README's configs \['default', 'python'\]"),
        ({"split": "validation"}, r"hub.split: 'validation' is not a split of config 'default'"),
    ):
        with pytest.raises(ConfigError, match=message):
            read(**hub)


def test_a_hub_dataset_without_a_readme_is_chosen_by_its_file_names_and_a_bad_revision_names_the_key(hub_env):
    hub_env("o/d", {"data/train-00000-of-00001.parquet": b"x", "data/test-00000-of-00001.parquet": b"y"})
    listing = list_hub(HubDataset("o/d", split="test"), "w", lambda path: path.endswith(".parquet"))
    assert listing.files == [("data/test-00000-of-00001.parquet", 1)] and listing.commit == COMMIT and listing.config is None
    with pytest.raises(ConfigError, match=r"w.hub.revision: cannot resolve 'v9' of 'o/d': RevisionNotFoundError"):
        list_hub(HubDataset("o/d", revision="v9"), "w", lambda path: True)


@pytest.mark.parametrize(
    "names, split, expected",
    [
        (["data/python/data-00000-of-00002.parquet", "data/python/data-00001-of-00002.parquet"], "train", "all"),
        (
            ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/test-00000-of-00001.parquet"],
            "train",
            ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"],
        ),
        (["data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"], "test", ["data/test-00000-of-00001.parquet"]),
        (["train/part-0.parquet", "valid/part-0.parquet"], "validation", ["valid/part-0.parquet"]),
        (["code_train.jsonl", "code_dev.jsonl", "README.md"], "validation", ["code_dev.jsonl"]),
        (["data/python/data-00000-of-00002.parquet"], "", "all"),
    ],
)
def test_hub_splits_follow_the_hubs_naming_rules(names, split, expected):
    files = [(n, 1) for n in names]
    chosen = split_files(files, HubDataset("o/d", split=split), "w")
    assert [p for p, _ in chosen] == (names if expected == "all" else expected)


def test_a_split_no_name_carries_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"w.hub.split: no file name under 'data/python' carries a split"):
        split_files(
            [("data/python/data-00000-of-00001.parquet", 1)], HubDataset("o/d", data_dir="data/python", split="test"), "w"
        )


@pytest.mark.slow
def test_the_bundled_stack_example_runs_the_incoder_stages(tmp_path):
    run_cli("run", "--config", os.path.join(EXAMPLES, "the-stack.yaml"), "--out", str(tmp_path), "--stages", "corpus")
    counts = json.loads((tmp_path / "the-stack" / "v0001" / "manifest.json").read_text())["counts"]
    assert counts["read"]["rejected"] == {"null-column": 1}
    assert counts["license"]["rejected"] == {"license": 6}  # miurahr/py7zr: LGPL-2.1-or-later
    assert counts["format"]["kept"] == counts["read"]["kept"] - 6 > 30


def test_the_column_check_reads_past_broken_first_lines_and_empty_files(tmp_path):
    (tmp_path / "a-empty.jsonl").write_bytes(b"")
    (tmp_path / "b.jsonl").write_text('{"text": broken\n[1]\n' + json.dumps({"text": "x = 1\n", "file": "x.py"}) + "\n")
    dataset = {"name": "d", "columns": {"content": "text", "path": "file"}, "paths": ["*.jsonl"]}
    config = load_config(_write_config(tmp_path, [dataset]))
    assert [f.name for f in read_datasets(config.sources.datasets, config.resolve, 100).files] == ["a-empty.jsonl", "b.jsonl"]
    config = load_config(_write_config(tmp_path, [{**dataset, "columns": {"content": "text", "path": "name"}}]))
    with pytest.raises(ConfigError, match=r"sources.datasets\[0\].columns.path: column 'name' is not in .*b.jsonl"):
        read_datasets(config.sources.datasets, config.resolve, 100)


def test_a_dataflow_run_refuses_dataset_files_on_local_disk(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.run import check_worker_paths

    dataset = {"name": "s", "preset": "the-stack-v1", "paths": ["gs://b/stack/*.parquet", "local/*.parquet"]}
    config = load_config(_write_config(tmp_path, [dataset]))
    with pytest.raises(ConfigError, match=r"sources.datasets\[0\].paths\[1\]=") as e:
        check_worker_paths(config, "gs://b/datasets", PipelineOptions(["--runner", "DataflowRunner"]))
    assert "paths[0]" not in str(e.value)
