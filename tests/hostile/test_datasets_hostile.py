"""Hostile dataset files, one test per class: each builds its inputs and checks the record each becomes.

Classes: copies of one row in two files (overlapping shards, a file downloaded twice);
compressed streams cut short; paths that are no regular file (FIFOs, devices, links to
them, folders named like data files); one bad value (stars past int64, JSON nested
100,000 deep, a column named twice). Nothing may hang or end in a traceback: reads run
under a time bound, and the whole run on a thread of its own that the test waits for a
bounded time.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import zlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard

from infra.spill import BundleSpill
from infra.writers import WriteParquetShards
from schemas import arrow
from schemas.config import load_config
from schemas.errors import ConfigError
from schemas.records import Rejected, RepoFile
from tests.conftest import local_pipeline
from tests.hostile.test_previous_version_hostile import run_bounded
from transforms.dedup.exact import ReadKeptFn, ResolveDuplicatesFn, SpilledFile
from transforms.sources.datasets.source import ReadDatasetUnitFn, read_datasets, row_mapping, split_file

COLUMNS = {"content": "text", "path": "file", "repo": "project", "stars": "stars", "license": "spdx"}
BOUND = 30.0  # seconds any read here may take; a hang fails the test instead


def code_rows(n: int, tag: str = "") -> list[dict]:
    """`n` rows of distinct code (distinct for exact dedup: the token sequences differ)."""
    return [
        {
            "text": f"def f{i}{tag}(x):\n    return x + {i}\n",
            "file": f"src/f{i}.py",
            "project": "acme/tools",
            "stars": i,
            "spdx": "MIT",
        }
        for i in range(n)
    ]


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def config_file(tmp_path, paths: list[str], **extra) -> str:
    dataset = {"name": "d", "columns": COLUMNS, "paths": paths}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "ds", "stages": ["corpus"], "sources": {"datasets": [dataset]}, **extra}))
    return str(path)


def read_all(tmp_path, paths: list[str]) -> tuple[list, list]:
    """(files listed, every record read), failing, not hanging, when reading takes longer than BOUND."""
    config = load_config(config_file(tmp_path, paths))
    section = config.sources.datasets[0]
    done: list = []

    def work():
        try:
            source = read_datasets(config.sources.datasets, config.resolve, 1_000_000)
            fn = ReadDatasetUnitFn({"d": row_mapping(section)}, {"d": section}, 1_000_000)
            done.append((source.files, [r for f in source.files for u in split_file(f, 1 << 20) for r in fn(u)]))
        except Exception as e:  # raised again on the test's thread
            done.append(e)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert done, f"reading did not finish in {BOUND}s"
    if isinstance(done[0], Exception):
        raise done[0]
    return done[0]


def outcome(records) -> dict[str, int]:
    """{"kept" or reason: how many}."""
    counts: dict[str, int] = {}
    for r in records:
        key = r.reason if isinstance(r, Rejected) else "kept"
        counts[key] = counts.get(key, 0) + 1
    return counts


# ---- copies of one row in two files ---------------------------------------------------------


def test_identical_rows_in_two_files_of_one_name_are_two_records_with_their_own_names_and_ids(tmp_path):
    rows = code_rows(5)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "part-0.jsonl").write_bytes(jsonl(rows))
    files, records = read_all(tmp_path, ["a/*.jsonl", "b/*.jsonl"])
    assert [f.name for f in files] == ["a/part-0.jsonl", "b/part-0.jsonl"]  # named below the shared folder
    assert all(isinstance(r, RepoFile) for r in records) and len(records) == 10
    assert len({r.id for r in records}) == 10  # each row read has its own id


def spilled_copies(tmp_path, stars: tuple) -> list[tuple]:
    """Copies of one file under one id, written to a spill file as exact dedup writes them."""
    spill = BundleSpill(str(tmp_path), "dedup")
    copies = []
    for i, n in enumerate(stars):
        record = RepoFile("same-id", "dataset", "acme/tools", "src/a.py", None, None, n, 12, f"x = {i}\n")
        copies.append(SpilledFile(spill.write(record.fields()), spill.writer.count - 1, record.replace(content="")).shuffled())
    spill.close()
    return copies


def test_exact_dedup_keeps_one_file_of_a_key_when_its_files_share_an_id(tmp_path):
    copies = spilled_copies(tmp_path, (3, 3, 7))
    resolve = ResolveDuplicatesFn(())
    resolve.setup()
    out = list(resolve(("key", copies)))
    kept = [o for o in out if isinstance(o, SpilledFile)]
    assert len(kept) == 1 and kept[0].index == 2  # most stars
    assert [o.reason for o in out if isinstance(o, Rejected)] == ["duplicate", "duplicate"]
    (record,) = ReadKeptFn().process((kept[0].spill, [kept[0].index]))  # by its place, not its id: one file back
    assert record.content == "x = 2\n"


def test_documents_that_share_an_id_stop_the_run_before_its_commit(tmp_path):
    rows = [Rejected("same-id", "read", "r", "first"), Rejected("same-id", "read", "r", "second")]
    with pytest.raises(Exception, match="two rows share the id 'same-id'"):
        with local_pipeline() as p:
            _ = p | beam.Create(rows) | WriteParquetShards(str(tmp_path), "documents", arrow.REJECTED, 1, unique_ids=True)


# ---- compressed streams cut short -------------------------------------------------------------


def flushed(lines: list[bytes], kind: str) -> tuple[bytes, list[int]]:
    """A stream compressed a line at a time with a flush after each; (bytes, offset of each flush)."""
    out, cuts = b"", []
    if kind == "gz":
        c = zlib.compressobj(wbits=31)
        for line in lines:
            out += c.compress(line) + c.flush(zlib.Z_FULL_FLUSH)
            cuts.append(len(out))
        return out + c.flush(), cuts
    c = zstandard.ZstdCompressor().compressobj()
    for line in lines:
        out += c.compress(line) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        cuts.append(len(out))
    return out + c.flush(), cuts


@pytest.mark.parametrize("kind", ["gz", "zst"])
@pytest.mark.parametrize("cut", ["at 60 %", "right after a line"])
def test_a_cut_compressed_stream_is_an_unreadable_file_rejection_after_the_rows_before_it(tmp_path, kind, cut):
    lines = [json.dumps(r).encode() + b"\n" for r in code_rows(1000)]
    data, flushes = flushed(lines, kind)
    at = flushes[599] if cut == "right after a line" else int(len(data) * 0.6)
    (tmp_path / f"cut.jsonl.{kind}").write_bytes(data[:at])
    (tmp_path / f"whole.jsonl.{kind}").write_bytes(data)
    _, records = read_all(tmp_path, [f"*.jsonl.{kind}"])
    # the complete lines before the cut are kept; the rest of the file is one rejection, nothing else
    complete = decompressed_prefix(data[:at], kind).count(b"\n")
    assert outcome(records) == {"kept": 1000 + complete, "unreadable-file": 1}
    (rejected,) = [r for r in records if isinstance(r, Rejected)]
    assert rejected.path == f"cut.jsonl.{kind}" and f"after {complete} rows" in rejected.detail
    assert "ends" in rejected.detail and (cut != "right after a line" or complete == 600)


def decompressed_prefix(data: bytes, kind: str) -> bytes:
    if kind == "gz":
        return zlib.decompressobj(wbits=31).decompress(data)
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def test_streams_of_several_gzip_members_or_zstd_frames_read_whole(tmp_path):
    """The trailer check ends at the last member or frame, not the first (as `cat a.gz b.gz` writes them)."""
    first, second = jsonl(code_rows(3)), jsonl(code_rows(4, tag="y"))
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(first, mtime=0) + gzip.compress(second, mtime=0) + b"\0" * 16)
    zstd = zstandard.ZstdCompressor()
    (tmp_path / "b.jsonl.zst").write_bytes(zstd.compress(first) + zstd.compress(second))
    _, records = read_all(tmp_path, ["*.jsonl.gz", "*.jsonl.zst"])
    assert outcome(records) == {"kept": 14}


# ---- paths that are no regular file -----------------------------------------------------------


def test_fifos_devices_links_and_folders_named_like_data_are_rejections_without_a_hang(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.jsonl").write_bytes(jsonl(code_rows(3)))
    os.mkfifo(data / "pipe.jsonl")
    os.symlink("/dev/zero", data / "zero.jsonl")
    os.symlink(data / "missing.jsonl", data / "dangling.jsonl")
    (data / "x.parquet").mkdir()
    pq.write_table(pa.table({"text": ["a = 1\n"], "file": ["a.py"]}), data / "x.parquet" / "part-0.parquet")
    (data / "notes").mkdir()  # a folder not named like a data file is no file of the pattern
    files, records = read_all(tmp_path, ["data/*"])
    assert [f.name for f in files] == ["dangling.jsonl", "good.jsonl", "pipe.jsonl", "x.parquet", "zero.jsonl"]
    rejected = {r.path: (r.reason, r.detail) for r in records if isinstance(r, Rejected)}
    assert {p: reason for p, (reason, _) in rejected.items()} == {
        "pipe.jsonl": "fifo",
        "zero.jsonl": "device",
        "x.parquet": "folder",
        "dangling.jsonl": "symlink",
    }
    assert "a link to a device" in rejected["zero.jsonl"][1] and "x.parquet/*.parquet" not in rejected["x.parquet"][1]
    assert "name the files inside it" in rejected["x.parquet"][1]
    assert outcome(records) == {"kept": 3, "fifo": 1, "device": 1, "folder": 1, "symlink": 1}


def test_a_file_replaced_by_a_fifo_after_the_listing_is_rejected_without_a_hang(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(jsonl(code_rows(2)))
    config = load_config(config_file(tmp_path, ["*.jsonl"]))
    section = config.sources.datasets[0]
    source = read_datasets(config.sources.datasets, config.resolve, 1_000_000)
    os.remove(tmp_path / "a.jsonl")
    os.mkfifo(tmp_path / "a.jsonl")
    done: list = []
    fn = ReadDatasetUnitFn({"d": row_mapping(section)}, {"d": section}, 1_000_000)
    thread = threading.Thread(
        target=lambda: done.append([r for u in split_file(source.files[0], 1 << 20) for r in fn(u)]), daemon=True
    )
    thread.start()
    thread.join(BOUND)
    assert done and outcome(done[0]) == {"fifo": 1}


# ---- one bad value -------------------------------------------------------------------------------


def test_stars_past_int64_reject_that_row_alone(tmp_path):
    rows = code_rows(1000)
    rows[500]["stars"] = 2**63
    rows[501]["stars"] = 10**30 * 1.0  # a whole float past int64
    (tmp_path / "a.jsonl").write_bytes(jsonl(rows))
    table = pa.table(
        {
            "text": [r["text"] for r in rows],
            "file": [r["file"] for r in rows],
            "project": ["p"] * 1000,
            "spdx": ["MIT"] * 1000,
            "stars": pa.array([2**64 - 1 if i == 7 else i for i in range(1000)], pa.uint64()),
        }
    )
    pq.write_table(table, tmp_path / "b.parquet")
    _, records = read_all(tmp_path, ["a.jsonl", "b.parquet"])
    assert outcome(records) == {"kept": 1997, "out-of-range": 3}
    assert {r.detail.split(": ", 1)[0] for r in records if isinstance(r, Rejected)} == {
        "a.jsonl line at byte " + str(len(jsonl(rows[:500]))),
        "a.jsonl line at byte " + str(len(jsonl(rows[:501]))),
        "b.parquet row 7 (row group 0)",
    }


def test_a_json_line_nested_100000_deep_is_a_broken_json_rejection(tmp_path):
    deep = b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    (tmp_path / "a.jsonl").write_bytes(jsonl(code_rows(2)) + deep + jsonl(code_rows(1, tag="x")))
    _, records = read_all(tmp_path, ["a.jsonl"])
    assert outcome(records) == {"kept": 3, "broken-json": 1}
    assert "nested deeper" in next(r.detail for r in records if isinstance(r, Rejected))


def test_a_column_named_twice_is_refused_in_the_first_file_and_rejected_in_a_later_one(tmp_path):
    doubled = pa.Table.from_arrays(
        [pa.array(["a = 1\n"]), pa.array(["b = 2\n"]), pa.array(["a.py"])], names=["text", "text", "file"]
    )
    pq.write_table(doubled, tmp_path / "b.parquet")
    with pytest.raises(ConfigError, match=r"columns.content: column 'text' is in .*b.parquet' 2 times"):
        read_all(tmp_path, ["b.parquet"])
    pq.write_table(
        pa.table({"text": ["c = 3\n"], "file": ["c.py"], "project": ["p"], "stars": [1], "spdx": ["MIT"]}), tmp_path / "a.parquet"
    )
    _, records = read_all(tmp_path, ["*.parquet"])
    assert outcome(records) == {"kept": 1, "unreadable-file": 1}
    (rejected,) = [r for r in records if isinstance(r, Rejected)]
    assert rejected.path == "b.parquet" and "column 'text' appears 2 times" in rejected.detail


# ---- all of them in one run ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_over_every_hostile_dataset_file_exits_cleanly_with_every_row_accounted(tmp_path):
    rows = code_rows(40)
    rows[3]["stars"] = 2**63
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "part-0.jsonl").write_bytes(jsonl(rows))  # the same rows twice
    other = jsonl(code_rows(30, tag="z"))
    (tmp_path / "a" / "cut.jsonl.gz").write_bytes(gzip.compress(other, mtime=0)[:-200])
    os.mkfifo(tmp_path / "a" / "pipe.jsonl")
    os.symlink("/dev/zero", tmp_path / "b" / "zero.jsonl")
    (tmp_path / "b" / "x.parquet").mkdir()
    (tmp_path / "b" / "deep.jsonl").write_bytes(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    config = config_file(tmp_path, ["a/*", "b/*"], read={"max_file_bytes": 100_000})
    done = run_bounded("run", "--config", config, "--out", str(tmp_path / "out"), seconds=240)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    version = tmp_path / "out" / "ds" / "v0001"
    manifest = json.loads((version / "manifest.json").read_text())
    read = manifest["counts"]["read"]
    assert read["in"] == read["kept"] + sum(read["rejected"].values())
    assert read["rejected"] == {"out-of-range": 2, "unreadable-file": 1, "fifo": 1, "device": 1, "folder": 1, "broken-json": 1}
    assert manifest["counts"]["dedup"]["rejected"] == {"duplicate": 39}  # each row of a/ and b/ once
    documents = pq.read_table(version / "documents").to_pylist()
    texts = [d["text"] for d in documents]
    assert len(documents) == len(set(d["id"] for d in documents)) == manifest["documents"]
    assert sum("def f5(x)" in t for t in texts) == 1
