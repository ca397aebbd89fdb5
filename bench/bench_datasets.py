"""Benchmark: read throughput and peak RSS of the datasets source on Parquet in The Stack v1's schema.

Writes Parquet files in The Stack v1's schema (every column), made of the .py files of
installed packages, each row's content made unique by a comment line (so Parquet's
dictionary cannot fold copies). In a fresh process per file and reader it reports MB/s of
content and peak RSS (VmHWM). Three parts:

    sizes          files of growing size in row groups of about 32 MiB of content, as published
                   datasets ship them, read two ways:
                     source    what a worker runs: `split_file` into units, then `ReadDatasetUnitFn`
                               on each unit, every row to a RepoFile (decoded, license joined, id hashed)
                     baseline  pyarrow alone: the same seven columns as Python values,
                               `pq.read_table` + `to_pylist` (the whole file at once, as a plain script would)
    row-group      the same rows as one row group of --row-group-mb (what `pq.write_table` writes
                   below a million rows) and in 32 MiB groups, read by the source (a page at a
                   time) and by pyarrow a row group at a time (`iter_batches` with its default
                   reads, as the source did before): peak RSS one group / 32 MiB groups
    small-groups   --small-mb of content in 2,000 row groups and in 20, read through the source's
                   Beam transform (`ReadDatasets`, DirectRunner) in a fresh process: seconds,
                   2,000 groups / 20 groups

    .venv/bin/python bench/bench_datasets.py                                   # every part
    .venv/bin/python bench/bench_datasets.py --parts row-group --row-group-mb 400
    .venv/bin/python bench/bench_datasets.py --parts sizes --sizes-mb 50 100
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
from transforms.sources.datasets.source import DatasetFile, ReadDatasetUnitFn, row_mapping, split_file  # noqa: E402

ROW_GROUP_CONTENT_BYTES = 32 * 2**20
SECTION = DatasetSource(name="the-stack", preset="the-stack-v1", paths=("bench.parquet",))


def stack_table(content_mb: float) -> pa.Table:
    """Rows of `content_mb` MB of content, built a 32 MiB chunk at a time (the Python rows of one chunk at once)."""
    base = stack_rows(files_per_package=40, max_bytes=60_000)
    schema = stack_schema()
    chunks, group, group_bytes, total, i = [], [], 0, 0, 0
    while total < content_mb * 1e6:
        row = dict(base[i % len(base)])
        row["content"] = f"# copy {i}\n" + row["content"]
        row["hexsha"] = f"{i:040x}"
        row["max_stars_repo_path"] = f"copy{i // len(base)}/{row['max_stars_repo_path']}"
        group.append(row)
        group_bytes += len(row["content"])
        total += len(row["content"])
        i += 1
        if group_bytes >= ROW_GROUP_CONTENT_BYTES or total >= content_mb * 1e6:
            chunks.append(pa.Table.from_pylist(group, schema=schema))
            group, group_bytes = [], 0
    return pa.concat_tables(chunks)


def write_stack_file(path: str, content_mb: float, groups: int | None = None, table: pa.Table | None = None) -> int:
    """A Parquet file of `content_mb` MB of content in exactly `groups` row groups (None: about 32 MiB each);
    returns its rows."""
    table = stack_table(content_mb) if table is None else table
    if groups is None:
        groups = max(1, round(content_mb * 1e6 / ROW_GROUP_CONTENT_BYTES))
    assert groups <= table.num_rows, f"{groups} row groups need at least as many rows, not {table.num_rows}"
    cuts = [table.num_rows * k // groups for k in range(groups + 1)]
    with pq.ParquetWriter(path, table.schema) as writer:
        for start, end in zip(cuts, cuts[1:]):
            writer.write_table(table.slice(start, end - start), row_group_size=end - start)
    return table.num_rows


def read_source(path: str) -> tuple[int, int]:
    file = DatasetFile("the-stack", path, os.path.getsize(path), "parquet", os.path.basename(path))
    fn = ReadDatasetUnitFn({"the-stack": row_mapping(SECTION)}, {"the-stack": SECTION}, max_file_bytes=10**9)
    records, content = 0, 0
    for unit in split_file(file, SECTION.range_bytes):
        for record in fn(unit):
            records += 1
            content += record.size
    return records, content


def read_by_row_group(path: str) -> tuple[int, int]:
    """pyarrow a row group at a time with its default reads (whole column chunks), as the source read before."""
    columns = sorted(set(SECTION.mapping().values()))
    records, content = 0, 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=SECTION.batch_rows, columns=columns, use_threads=False):
        records += batch.num_rows
        content += sum(len(v) for v in batch.column("content").cast(pa.binary()).to_pylist())
    return records, content


def read_beam(path: str) -> tuple[int, int]:
    """The source's Beam transform on the local runner: every row read, counted."""
    import apache_beam as beam

    from pipeline.options import make_pipeline_options
    from transforms.sources.datasets.source import ReadDatasets, list_files

    section = DatasetSource(name="the-stack", preset="the-stack-v1", paths=(path,))
    listed = {"the-stack": list_files(section, "bench", lambda p: p)}
    counted = path + ".count"
    with beam.Pipeline(options=make_pipeline_options(["--direct_running_mode=in_memory"])) as p:
        read = p | ReadDatasets((section,), listed, 10**9)
        _ = read.kept | beam.Map(lambda r: r.size) | beam.CombineGlobally(sum) | beam.Map(write_text, counted)
        _ = read.kept | beam.combiners.Count.Globally() | "WriteCount" >> beam.Map(write_text, counted + "s")
    with open(counted + "s") as f, open(counted) as g:
        return int(f.read()), int(g.read())


def write_text(value, path: str) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def read_baseline(path: str) -> tuple[int, int]:
    columns = sorted(set(SECTION.mapping().values()))
    rows = pq.read_table(path, columns=columns).to_pylist()
    return len(rows), sum(len(r["content"].encode()) for r in rows)


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


READERS = {"source": read_source, "baseline": read_baseline, "by-row-group": read_by_row_group, "beam": read_beam}


def measure(path: str, reader: str) -> dict:
    started = time.perf_counter()
    records, content = READERS[reader](path)
    seconds = time.perf_counter() - started
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "mb_per_s": round(content / 1e6 / seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run_measure(path: str, reader: str, rows: int) -> dict:
    """`measure` in a fresh process (so its peak RSS is the reader's alone), checking every row was read."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", path, reader],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["records"] == rows, (reader, result, rows)
    groups = pq.ParquetFile(path).metadata.num_row_groups
    return {"file_mb": round(os.path.getsize(path) / 1e6, 1), "groups": groups, "reader": reader, **result}


def print_table(results: list[dict]) -> None:
    print(f"{'content MB':>10} {'file MB':>8} {'groups':>6} {'reader':12} {'rows':>8} {'s':>7} {'MB/s':>7} {'peak RSS MB':>12}")
    for r in results:
        print(
            f"{r['mb']:>10g} {r['file_mb']:>8} {r['groups']:>6} {r['reader']:12} {r['records']:>8} {r['seconds']:>7} "
            f"{r['mb_per_s']:>7} {r['peak_rss_mb']:>12}"
        )


def part_sizes(tmp: str, sizes_mb: list[float]) -> None:
    results = []
    for mb in sizes_mb:
        path = os.path.join(tmp, f"stack-{mb:g}.parquet")
        rows = write_stack_file(path, mb)
        results += [{"mb": mb, **run_measure(path, reader, rows)} for reader in ("source", "baseline")]
        os.remove(path)
    print_table(results)
    for mb in sizes_mb:
        source, baseline = (next(r for r in results if r["mb"] == mb and r["reader"] == k) for k in ("source", "baseline"))
        print(
            f"{mb:g} MB: throughput source/baseline {source['mb_per_s'] / baseline['mb_per_s']:.2f}, "
            f"peak RSS source/baseline {source['peak_rss_mb'] / baseline['peak_rss_mb']:.2f}"
        )
    first, last = (next(r for r in results if r["mb"] == mb and r["reader"] == "source") for mb in (sizes_mb[0], sizes_mb[-1]))
    print(f"source peak RSS at {sizes_mb[-1]:g} MB / at {sizes_mb[0]:g} MB: {last['peak_rss_mb'] / first['peak_rss_mb']:.2f}")


def part_row_group(tmp: str, mb: float) -> None:
    """One row group of `mb` MB against the same rows in 32 MiB groups."""
    table = stack_table(mb)
    one, bounded = os.path.join(tmp, "one-group.parquet"), os.path.join(tmp, "32mib-groups.parquet")
    rows = write_stack_file(one, mb, groups=1, table=table)
    write_stack_file(bounded, mb, table=table)
    del table
    results = [{"mb": mb, **run_measure(path, reader, rows)} for reader in ("source", "by-row-group") for path in (one, bounded)]
    print_table(results)
    for reader in ("source", "by-row-group"):
        a, b = (r for r in results if r["reader"] == reader)
        print(
            f"{reader}: peak RSS one {mb:g} MB group / 32 MiB groups {a['peak_rss_mb'] / b['peak_rss_mb']:.2f}, "
            f"time {a['seconds'] / b['seconds']:.2f}"
        )
    os.remove(one)
    os.remove(bounded)


def part_small_groups(tmp: str, mb: float, many: int, few: int) -> None:
    """`mb` MB of content in `many` row groups against `few`, through the source's Beam transform."""
    table = stack_table(mb)
    paths = {n: os.path.join(tmp, f"groups-{n}.parquet") for n in (many, few)}
    rows = {n: write_stack_file(path, mb, groups=n, table=table) for n, path in paths.items()}
    results = [{"mb": mb, **run_measure(paths[n], "beam", rows[n])} for n in (few, many)]
    print_table(results)
    print(f"{many} row groups / {few}: time {results[1]['seconds'] / results[0]['seconds']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--parts", nargs="+", choices=["sizes", "row-group", "small-groups"], default=["sizes", "row-group", "small-groups"]
    )
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[100, 200, 400], help="content per file, MB")
    parser.add_argument("--row-group-mb", type=float, default=1000, help="content of the one-row-group file, MB (1 GB)")
    parser.add_argument("--small-mb", type=float, default=20, help="content of the many-row-group files, MB")
    parser.add_argument("--groups", type=int, nargs=2, default=[2000, 20], metavar=("MANY", "FEW"))
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # internal: PATH READER, in this process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if "sizes" in args.parts:
            part_sizes(tmp, args.sizes_mb)
        if "row-group" in args.parts:
            part_row_group(tmp, args.row_group_mb)
        if "small-groups" in args.parts:
            part_small_groups(tmp, args.small_mb, *args.groups)


if __name__ == "__main__":
    main()
