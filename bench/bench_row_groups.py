"""Benchmark: peak memory of reading a documents shard, one row group vs bounded row groups.

Readers that go a row group at a time (Beam's ReadFromParquet, which the binarize stage
uses, and most dataframe readers) hold a whole row group of a column in memory: a
shard written as one row group costs its whole text column. This writes one synthetic
shard of source-code-like text twice, as one row group (what `pq.write_table` does
below a million rows; the baseline) and through the pipeline's `write_parquet` (row
groups of about `ROW_GROUP_BYTES`), then, in a fresh process per file and reader,
reads it two ways and reports throughput and peak RSS (VmHWM: ru_maxrss would carry
the parent's peak across exec):

    by-row-group   every row group's id and text, one at a time, as ReadFromParquet does
    sample-pass    the tokenizer's sample pass (`choose_sample`, record batches)

    .venv/bin/python bench/bench_row_groups.py              # a 512 MB shard
    .venv/bin/python bench/bench_row_groups.py --mb 128
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from infra.writers import PARQUET_COMPRESSION, ROW_GROUP_BYTES, write_parquet  # noqa: E402
from tokenizer_training.sample import choose_sample  # noqa: E402

SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string())])
WORDS = ["def", "return", "self", "value", "for", "in", "range", "if", "else", "import", "x", "=", "(", ")", ":"]


def synthetic_rows(total_mb: float, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows, size, i = [], 0, 0
    while size < total_mb * 1e6:
        lines = [
            "    " * rng.randint(0, 3) + " ".join(rng.choices(WORDS, k=rng.randint(3, 12))) for _ in range(rng.randint(20, 300))
        ]
        text = "\n".join(lines) + "\n"
        rows.append({"id": f"{i:012d}", "text": text})
        size += len(text)
        i += 1
    return sorted(rows, key=lambda r: r["id"])


READERS = ("by-row-group", "sample-pass")


def read(path: str, reader: str) -> int:
    if reader == "sample-pass":
        return len(choose_sample([path], seed=0, max_documents=1000, fraction=1.0, max_bytes=10_000_000))
    shard, rows = pq.ParquetFile(path), 0
    for i in range(shard.num_row_groups):
        rows += shard.read_row_group(i, columns=["id", "text"]).num_rows
    return rows


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def measure(path: str, reader: str) -> dict:
    started = time.perf_counter()
    read(path, reader)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "mb_per_s": round(os.path.getsize(path) / 1e6 / seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=512, help="text in the shard, MB (default 512)")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # internal: PATH READER, in this process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        rows = synthetic_rows(args.mb)
        single, bounded = os.path.join(tmp, "single.parquet"), os.path.join(tmp, "bounded.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), single, compression=PARQUET_COMPRESSION)
        write_parquet(bounded, SCHEMA, rows)
        del rows
        results = {}
        for reader in READERS:
            for name, path in (("one row group", single), ("bounded", bounded)):
                groups = pq.ParquetFile(path).metadata.num_row_groups
                command = [sys.executable, __file__, "--measure", path, reader]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                results[reader, name] = {"row_groups": groups, **json.loads(out.stdout)}

    print(f"shard: {args.mb:g} MB of text; ROW_GROUP_BYTES = {ROW_GROUP_BYTES / 2**20:g} MiB")
    print(f"{'reader':14} {'file':14} {'groups':>6} {'s':>6} {'MB/s':>7} {'peak RSS MB':>12}")
    for (reader, name), r in results.items():
        print(f"{reader:14} {name:14} {r['row_groups']:>6} {r['seconds']:>6} {r['mb_per_s']:>7} {r['peak_rss_mb']:>12}")
    for reader in READERS:
        base, ours = results[reader, "one row group"], results[reader, "bounded"]
        print(
            f"{reader}: peak RSS bounded/one-group {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}, "
            f"throughput {ours['mb_per_s'] / base['mb_per_s']:.2f}"
        )


if __name__ == "__main__":
    main()
