"""Benchmark: read throughput and peak RSS of the datasets source on Parquet in The Stack v1's schema.

Writes Parquet files of growing size in The Stack v1's schema (every column), made of
the .py files of installed packages, each row's content made unique by a comment line
(so Parquet's dictionary cannot fold copies), in row groups of about 32 MiB of content as
published datasets ship them. Then, in a fresh process per file and reader, reads it two
ways and reports MB/s of content and peak RSS (VmHWM):

    source     what a worker runs: `split_file` into row-group units, then `ReadDatasetUnitFn`
               on each unit, every row to a RepoFile (columns decoded, license joined, id hashed)
    baseline   pyarrow alone: the same seven columns as Python values, `pq.read_table` + `to_pylist`
               (the whole file at once, as a plain script would)

Throughput ratio source/baseline is the cost of the per-row checks and records; the peak
RSS of the source should stay flat as the file grows (one row group at a time), while the
baseline grows with the file.

    .venv/bin/python bench/bench_datasets.py                      # 100, 200 and 400 MB of content
    .venv/bin/python bench/bench_datasets.py --sizes-mb 50 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from schemas.datasets_config import DatasetSource  # noqa: E402
from tests.transforms.sources.stack_files import stack_rows, stack_schema  # noqa: E402
from transforms.sources.datasets import DatasetFile, ReadDatasetUnitFn, row_mapping, split_file  # noqa: E402

ROW_GROUP_CONTENT_BYTES = 32 * 2**20
SECTION = DatasetSource(name="the-stack", preset="the-stack-v1", paths=("bench.parquet",))


def write_stack_file(path: str, content_mb: float) -> int:
    """A Parquet file of `content_mb` MB of content, written a row group at a time; returns its rows."""
    base = stack_rows(files_per_package=40, max_bytes=60_000)
    schema = stack_schema()
    rows, group, group_bytes, total, i = 0, [], 0, 0, 0
    with pq.ParquetWriter(path, schema) as writer:
        while total < content_mb * 1e6:
            row = dict(base[i % len(base)])
            row["content"] = f"# copy {i}\n" + row["content"]
            row["hexsha"] = f"{i:040x}"
            row["max_stars_repo_path"] = f"copy{i // len(base)}/{row['max_stars_repo_path']}"
            group.append(row)
            group_bytes += len(row["content"])
            total += len(row["content"])
            i += 1
            if group_bytes >= ROW_GROUP_CONTENT_BYTES:
                writer.write_table(pa.Table.from_pylist(group, schema=schema))
                rows, group, group_bytes = rows + len(group), [], 0
        if group:
            writer.write_table(pa.Table.from_pylist(group, schema=schema))
            rows += len(group)
    return rows


def read_source(path: str) -> tuple[int, int]:
    file = DatasetFile("the-stack", path, os.path.getsize(path), "parquet", os.path.basename(path))
    fn = ReadDatasetUnitFn({"the-stack": row_mapping(SECTION)}, {"the-stack": SECTION}, max_file_bytes=10**9)
    records, content = 0, 0
    for unit in split_file(file, SECTION.range_bytes):
        for record in fn(unit):
            records += 1
            content += record.size
    return records, content


def read_baseline(path: str) -> tuple[int, int]:
    columns = sorted(set(SECTION.mapping().values()))
    rows = pq.read_table(path, columns=columns).to_pylist()
    return len(rows), sum(len(r["content"].encode()) for r in rows)


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def measure(path: str, reader: str) -> dict:
    started = time.perf_counter()
    records, content = (read_source if reader == "source" else read_baseline)(path)
    seconds = time.perf_counter() - started
    return {"records": records, "seconds": round(seconds, 2), "mb_per_s": round(content / 1e6 / seconds, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[100, 200, 400], help="content per file, MB")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # internal: PATH READER, in this process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mb in args.sizes_mb:
            path = os.path.join(tmp, f"stack-{mb:g}.parquet")
            rows = write_stack_file(path, mb)
            groups = pq.ParquetFile(path).metadata.num_row_groups
            for reader in ("source", "baseline"):
                out = subprocess.run([sys.executable, __file__, "--measure", path, reader], capture_output=True, text=True,
                                     check=True, env={**os.environ, "PYTHONPATH": ROOT})
                result = json.loads(out.stdout)
                assert result["records"] == rows, (reader, result, rows)
                results.append({"mb": mb, "file_mb": round(os.path.getsize(path) / 1e6, 1), "groups": groups,
                                "reader": reader, **result})
            os.remove(path)

    print(f"{'content MB':>10} {'file MB':>8} {'groups':>6} {'reader':9} {'rows':>8} {'s':>7} {'MB/s':>7} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['mb']:>10g} {r['file_mb']:>8} {r['groups']:>6} {r['reader']:9} {r['records']:>8} {r['seconds']:>7} "
              f"{r['mb_per_s']:>7} {r['peak_rss_mb']:>12}")
    for mb in args.sizes_mb:
        source, baseline = (next(r for r in results if r["mb"] == mb and r["reader"] == k) for k in ("source", "baseline"))
        print(f"{mb:g} MB: throughput source/baseline {source['mb_per_s'] / baseline['mb_per_s']:.2f}, "
              f"peak RSS source/baseline {source['peak_rss_mb'] / baseline['peak_rss_mb']:.2f}")
    small, large = args.sizes_mb[0], args.sizes_mb[-1]
    first, last = (next(r for r in results if r["mb"] == mb and r["reader"] == "source") for mb in (small, large))
    print(f"source peak RSS at {large:g} MB / at {small:g} MB: {last['peak_rss_mb'] / first['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
