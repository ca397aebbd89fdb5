"""`code-corpus show`: seeded samples of a version's rejections and documents, streamed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from infra import storage
from pipeline.show import Query, printable, reservoir, survivor_of
from schemas import arrow
from tests.conftest import ROOT, run_cli

SURVIVOR_ID = "5" * 24
DUPLICATE_ID = "d" * 24


def write_version(root, rejections: int, documents: list[dict] = (), files: int = 1) -> str:
    """A version directory with a manifest, documents/ and `rejections` generated rows in rejected/.

    Every 1000th rejection is filters/long-line; one is a near-duplicate of SURVIVOR_ID.
    """
    version = os.path.join(str(root), "gen", "v0001")
    os.makedirs(os.path.join(version, "rejected"))
    os.makedirs(os.path.join(version, "documents"))
    doc_rows = [{**{name: None for name in arrow.DOCUMENT.names}, "kind": "code", "tags": [], "meta": [], **d} for d in documents]
    pq.write_table(pa.Table.from_pylist(doc_rows, schema=arrow.DOCUMENT), os.path.join(version, "documents", "part-0.parquet"))
    per_file = -(-rejections // files)
    for n in range(files):
        start, stop = n * per_file, min(rejections, (n + 1) * per_file)
        path = os.path.join(version, "rejected", f"part-{n:05d}.parquet")
        with pq.ParquetWriter(path, arrow.REJECTED, compression="zstd") as writer:
            for chunk in range(start, stop, 100_000):
                writer.write_table(rejection_rows(chunk, min(stop, chunk + 100_000)))
    manifest = {"name": "gen", "version": "v0001", "documents": len(documents), "rejected": rejections}
    with open(os.path.join(version, "manifest.json"), "w") as f:
        json.dump({**manifest, "files": listed_files(version)}, f)
    return version


def listed_files(version: str) -> dict:
    """The manifest's file list of what a fixture wrote into documents/ and rejected/ (the later commands read it)."""
    return {
        f"{folder}/{name}": {"bytes": os.path.getsize(os.path.join(version, folder, name))}
        for folder in ("documents", "rejected")
        for name in sorted(os.listdir(os.path.join(version, folder)))
    }


def rejection_rows(start: int, stop: int) -> pa.Table:
    """Rejections numbered start..stop-1 (built with Arrow compute: a million take a second)."""
    k = np.arange(start, stop)
    number = pc.cast(pa.array(k), pa.string())
    ids = pc.utf8_lpad(number, 24, "0")
    long_line, near = pa.array(k % 1000 == 7), pa.array(k == 3)
    columns = {
        "id": ids,
        "stage": pc.if_else(long_line, "filters", pc.if_else(near, "near-dedup", "language")),
        "reason": pc.if_else(long_line, "long-line", pc.if_else(near, "near-duplicate", "language")),
        "detail": pc.if_else(near, f"survivor={SURVIVOR_ID} jaccard=0.83", "line 2 has 5000 tokens > 3000"),
        "source": pa.array(["local"] * len(k)),
        "repo": pa.array(["o/r"] * len(k)),
        "path": pc.binary_join_element_wise("f", number, ".js", ""),
        "excerpt": pc.binary_join_element_wise("/* file ", number, " */ " + "x = 1; " * 40, ""),
        "size": pa.array(k % 5000 + 300),
        "lang": pa.array(["JavaScript"] * len(k)),
    }
    return pa.Table.from_pydict(columns, schema=arrow.REJECTED)


def test_show_prints_the_planted_minified_file_with_its_detail(sample_version):
    version, _ = sample_version()
    shown = run_cli("show", str(version), "--stage", "filters", "--reason", "long-line").stdout
    header, excerpt, *_ = shown.split("\n")
    assert header.startswith("=== id=") and "repo=webcraft/devtools path=static/icons.min.js" in header
    assert 'stage=filters reason=long-line detail="line 2 has ' in header and "tokens > 3000" in header
    assert excerpt == "/*! icons v1.4.0 | MIT */"
    assert "[... the first 400 of 17,966 bytes]" in shown
    assert shown.count("=== ") == 1  # the sample has one long-line file


def test_show_kept_documents_as_jsonl_with_their_markup(sample_version):
    version, _ = sample_version()
    args = ["show", str(version), "--kept", "--lang", "Python", "-n", "3", "--seed", "7", "--format", "jsonl"]
    rows = [json.loads(line) for line in run_cli(*args).stdout.splitlines()]
    documents = {r["id"]: r for r in pq.read_table(version / "documents").to_pylist()}
    assert len(rows) == 3 and all(r["lang"] == "Python" for r in rows)
    for row in rows:
        assert row["text"] == documents[row["id"]]["text"] and row["text"].startswith("<| file ")
    assert run_cli(*args).stdout == run_cli(*args).stdout  # seeded
    grep = run_cli("show", str(version), "--kept", "--grep", r"def \w+\(", "-n", "50", "--format", "jsonl").stdout
    found = {json.loads(line)["id"] for line in grep.splitlines()}
    assert found and found == {i for i, d in documents.items() if re.search(r"def \w+\(", d["text"])}


def test_show_refuses_what_it_cannot_answer(tmp_path):
    version = write_version(tmp_path, 10)
    refused = run_cli("show", version, "--kept", "--stage", "filters", check=False)
    assert refused.returncode == 2 and "--stage and --reason select rejections" in refused.stderr
    bad_regex = run_cli("show", version, "--grep", "(", check=False)
    assert bad_regex.returncode == 2 and "--grep: '(' is not a regular expression" in bad_regex.stderr
    missing = run_cli("show", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 1 and "is not a complete dataset version" in missing.stderr
    none = run_cli("show", version, "--reason", "no-such-reason").stdout
    assert none.strip() == "no record matches"


def test_a_near_duplicate_is_shown_beside_its_survivor_with_their_jaccard(tmp_path):
    survivor = {"id": SURVIVOR_ID, "text": "<| file ext=.js |>\n/* file 3 */ x = 1; x = 2;", "repo": "o/s", "path": "s.js"}
    version = write_version(tmp_path, 10, [survivor])
    shown = run_cli("show", version, "--reason", "near-duplicate").stdout
    assert f"near-duplicate of {SURVIVOR_ID} (Jaccard 0.83)" in shown
    rejected_line, survivor_line = shown.split("\n")[4].split(" | ")
    assert rejected_line.startswith("/* file 3 */ x = 1;") and survivor_line == "<| file ext=.js |>"
    assert "left: the rejection's excerpt; right: survivor o/s/s.js" in shown
    row = json.loads(run_cli("show", version, "--reason", "near-duplicate", "--format", "jsonl").stdout)
    assert row["survivor"]["jaccard"] == 0.83 and row["survivor"]["text"] == survivor["text"]


def test_a_rejection_whose_detail_names_no_survivor_is_shown_on_its_own():
    assert survivor_of({"reason": "near-duplicate", "detail": f"survivor={SURVIVOR_ID} jaccard=0.83"}) == (SURVIVOR_ID, 0.83)
    assert survivor_of({"reason": "duplicate", "detail": SURVIVOR_ID}) == (SURVIVOR_ID, None)  # exact dedup: the bare id
    assert survivor_of({"reason": "near-duplicate", "detail": "cluster of 3"}) is None
    assert survivor_of({"reason": "near-duplicate", "detail": f"survivor={SURVIVOR_ID}"}) == (SURVIVOR_ID, None)
    assert survivor_of({"reason": "long-line", "detail": SURVIVOR_ID}) is None


def test_the_reservoir_is_seeded_and_independent_of_batch_sizes():
    table = rejection_rows(0, 5000)
    query = Query(stage="language", n=10, seed=3)

    def sampled(batch_rows: int) -> list[str]:
        return sorted(r["id"] for r in reservoir(table.to_batches(max_chunksize=batch_rows), query))

    assert sampled(7) == sampled(1000) == sampled(5000)
    matching = [k for k in range(5000) if k % 1000 != 7 and k != 3]
    keys = np.random.default_rng(3).random(len(matching))  # one key per matching row, in order
    assert sampled(64) == sorted(f"{matching[k]:024d}" for k in np.argsort(keys)[:10])
    assert sampled(64) != sorted(r["id"] for r in reservoir(table.to_batches(64), Query(stage="language", n=10, seed=4)))


def test_show_reads_a_version_on_cloud_storage(tmp_path, gcs):
    version = f"{gcs}/gen/v0001"
    storage.copy_tree(write_version(tmp_path, 3000, files=2), version)
    args = ["--stage", "filters", "--reason", "long-line", "-n", "2", "--format", "jsonl"]
    shown = run_cli("show", version, *args).stdout
    rows = [json.loads(line) for line in shown.splitlines()]
    assert len(rows) == 2 and {r["path"] for r in rows} < {"f7.js", "f1007.js", "f2007.js"}
    assert all(r["reason"] == "long-line" and r["excerpt"].startswith("/* file ") for r in rows)
    assert shown == run_cli("show", str(tmp_path / "gen" / "v0001"), *args).stdout  # the same sample as the local copy


def excerpt_bytes(version: str) -> int:
    """Uncompressed bytes of the excerpt column over all of rejected/."""
    total = 0
    for name in os.listdir(os.path.join(version, "rejected")):
        meta = pq.ParquetFile(os.path.join(version, "rejected", name)).metadata
        column = meta.schema.to_arrow_schema().get_field_index("excerpt")
        total += sum(meta.row_group(g).column(column).total_uncompressed_size for g in range(meta.num_row_groups))
    return total


GROWTH = """
import json, os, re, sys
from infra.runtime import configure_process
configure_process()  # as `code-corpus` does, before pyarrow loads
from pipeline import commands  # what `show` loads, loaded once: each run below is a process forked from here
from pipeline.cli import main

def status(key):
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\\s+(\\d+)", f.read()).group(1))

for n, args in enumerate(json.loads(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        sys.stdout = open(f"{sys.argv[2]}-{n}.out", "w")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak (VmHWM) starts again from here: the imports' memory is not counted
        before = status("VmRSS")
        code = main(args)
        sys.stdout.flush()
        print("growth_kb", n, status("VmHWM") - before, file=sys.stderr, flush=True)
        os._exit(code)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        sys.exit(f"show {args} failed")
"""


def memory_growth_of_show(folder, *runs: list[str]) -> list[tuple[int, str]]:
    """For each run's `code-corpus show` arguments, (kB the peak memory grew by while it ran, stdout).

    Each run is a process of its own, forked from one that loaded what `show` imports, so that
    no run's heap is shaped by another's and the interpreter starts once.
    """
    args = json.dumps([["show", *run] for run in runs])
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run(
        [sys.executable, "-c", GROWTH, args, str(folder / "run")], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    growth = {int(n): int(kb) for n, kb in re.findall(r"^growth_kb (\d+) (\d+)$", proc.stderr, re.M)}
    return [(growth[n], (folder / f"run-{n}.out").read_text()) for n in range(len(runs))]


@pytest.mark.slow
def test_show_on_a_million_rejections_keeps_memory_flat(tmp_path_factory):
    """A million rejections (about 300 MB of excerpts) cost `show` no more memory than a tenth of them.

    Both versions have row groups of 100,000 rows, as the writer makes them (32 MB of text a group).
    """
    small = write_version(tmp_path_factory.mktemp("small"), 100_000)
    large = write_version(tmp_path_factory.mktemp("large"), 1_000_000, files=4)
    assert excerpt_bytes(large) > 250_000_000  # what reading the version whole would hold
    planted = ["--stage", "filters", "--reason", "long-line", "--format", "jsonl"]
    every_row = ["--format", "jsonl"]  # every row a candidate
    (small_growth, _), (large_growth, shown), (everything_growth, everything) = memory_growth_of_show(
        tmp_path_factory.mktemp("show"), [small, *planted], [large, *planted], [large, *every_row]
    )
    rows = [json.loads(line) for line in shown.splitlines()]
    assert len(rows) == 5 and all(r["reason"] == "long-line" for r in rows)
    assert large_growth < small_growth + 20_000, (small_growth, large_growth)  # kB: flat
    assert everything_growth < small_growth + 20_000, (small_growth, everything_growth)
    assert len({json.loads(line)["id"] for line in everything.splitlines()}) == 5


def test_terminal_escapes_in_the_data_are_shown_not_sent():
    assert printable("a\x1b[2J\tb\nc\x07\x9b") == "a\\x1b[2J\tb\nc\\x07\\x9b"


def test_an_exact_duplicate_is_shown_with_its_survivors_opening(sample_version):
    version, _ = sample_version()
    shown = run_cli("show", str(version), "--stage", "dedup", "--reason", "duplicate", "-n", "1").stdout.split("\n")
    survivor = re.search(r'detail="([0-9a-f]{24})"', shown[0]).group(1)
    assert shown[1].startswith(f"duplicate of {survivor}; the rejection has no excerpt, the survivor ")
    document = pq.read_table(version / "documents", filters=[("id", "=", survivor)]).to_pylist()[0]
    assert shown[2] == document["text"].split("\n")[0] and shown[2].startswith("<| file ")


@pytest.mark.slow
def test_show_stops_quietly_when_its_reader_closes_the_pipe(tmp_path):
    version = write_version(tmp_path, 2000)
    script = f"{sys.executable} -m pipeline.cli show {version} -n 1000 | head -1"
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}
    )
    assert proc.stdout.startswith("=== id=") and proc.stderr == ""
