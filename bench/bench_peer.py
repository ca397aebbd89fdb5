"""Benchmark: our cleaning path side by side with HuggingFace datatrove on the same corpus.

The corpus is the .py files of the installed site-packages, one repository per
top-level package (each with an MIT LICENSE file and a star count in a metadata
file), copied until it holds `--mb` MB: `--copies` copies of `--mb / --copies` MB
of distinct files, so exact dedup has real work. Both sides read that folder.

    ours       read (local source) → license → language → filters → exact dedup →
               email scrub → Parquet, the pipeline's own stages on the local runner
               (default --direct_running_mode=multi_processing --direct_num_workers=2)
    datatrove  LocalPipelineExecutor, `--workers` processes: a reader of the same
               repositories → language (LambdaFilter) → the same quality filters
               (a BaseFilter calling `transforms.cleaning.quality_checks.check_file`) → exact
               dedup (ExactDedupSignature → ExactFindDedups → ExactDedupFilter, keyed
               by `transforms.dedup.exact_keys.dedup_key`, priority = stars) → PIIFormatter
               (emails) → ParquetWriter. Its dedup needs the filtered documents twice,
               so the first pass also writes them as JSON lines for the third to read.

datatrove has no license detection; ours reads each repository's LICENSE file and
checks every file's license (all are MIT here, so nothing is dropped by it). Each
side runs in its own process; peak memory is the PSS summed over that process and all
its descendants (`process_tree.py`), sampled every 0.2 s. Prints files/s, MB/s, peak
memory and ours/datatrove, then each side's CPU seconds per process: on 2 cores the
busiest process bounds the wall time, so they say how evenly each side spread its work.

datatrove's side calls our functions from modules that do not import Beam, and it
asserts that its process and every one of its tasks' processes never loaded Beam:
the runner's libraries are ours alone and must not count against datatrove.

    .venv/bin/pip install -e '.[bench]'    # datatrove==0.10.0
    .venv/bin/python bench/bench_peer.py --mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile

from process_tree import measure, print_side_by_side
from site_corpus import MAX_FILE_BYTES, METADATA_FILE, REPOS_DIR, build_corpus, warm_cache

OUTPUT_SHARDS = 4

# ---- outputs -------------------------------------------------------------------------------


def parquet_rows(folder: str) -> int:
    import pyarrow.parquet as pq

    return sum(
        pq.ParquetFile(os.path.join(d, n)).metadata.num_rows
        for d, _, names in os.walk(folder)
        for n in names
        if n.endswith(".parquet")
    )


# ---- our side --------------------------------------------------------------------------


def run_ours(work: str, out: str, beam_args: list[str]) -> dict:
    import apache_beam as beam
    import pyarrow as pa

    from infra.writers import WriteParquetShards, WriteSmallJson, read_json
    from pipeline.corpus import CorpusFlow, code_stages, read_code_sources
    from pipeline.options import make_pipeline_options
    from schemas.config import PipelineConfig, ScrubConfig
    from schemas.sources_config import LocalSource, SourcesConfig
    from transforms.base import fused, stage_names_of
    from transforms.cleaning.decontamination import DecontaminateFn
    from transforms.stage_outputs import COUNTS_FILE

    file_schema = pa.schema(
        [("id", pa.string()), ("source", pa.string()), ("repo", pa.string()), ("path", pa.string())]
        + [("revision", pa.string()), ("license", pa.string()), ("stars", pa.int64()), ("size", pa.int64())]
        + [("content", pa.large_string()), ("lang", pa.string()), ("origin", pa.string())]
    )
    source = LocalSource(os.path.join(work, REPOS_DIR), os.path.join(work, METADATA_FILE))
    emails_only = ScrubConfig(secrets=False, ip_addresses=False)  # as datatrove's PIIFormatter(remove_ips=False)
    config = PipelineConfig(name="peer", sources=SourcesConfig(local=(source,)), scrub=emails_only)
    with beam.Pipeline(options=make_pipeline_options(beam_args)) as p:
        flow = CorpusFlow(p, config, out)
        (files,) = read_code_sources(flow)
        stages = [s for s in code_stages(flow) if stage_names_of(s) != [DecontaminateFn.stage]]  # datatrove has none
        for stage in fused(stages):
            files = flow.add_stage(files | stage)
        files | "WriteFiles" >> WriteParquetShards(out, "files", file_schema, OUTPUT_SHARDS)
        (
            flow.tallies
            | "AllTallies" >> beam.Flatten()
            | "SumTallies" >> beam.CombinePerKey(sum)
            | "WriteCounts" >> WriteSmallJson(os.path.join(out, COUNTS_FILE))
        )
    counts = {tuple(key): n for key, n in read_json(os.path.join(out, COUNTS_FILE))}
    return {
        "kept": parquet_rows(out),
        "dedup_rejected": counts.get(("dedup", "rejected", "duplicate"), 0),
        "emails_replaced": counts.get(("scrub", "stat", "replaced-email"), 0),
    }


# ---- datatrove's side ------------------------------------------------------------------


def assert_beam_never_loaded() -> None:
    """Beam is ours alone: loaded in datatrove's processes, its libraries (over 100 MB) would count against it."""
    assert "apache_beam" not in sys.modules, f"datatrove's side loaded Beam (process {os.getpid()})"


def beam_never_loaded(data, rank: int = 0, world_size: int = 1):
    """The last step of each of datatrove's pipelines: passes its documents on, then checks the task's process."""
    if data:
        yield from data
    assert_beam_never_loaded()


def run_datatrove(work: str, out: str, tasks: int, workers: int) -> dict:
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter, ExactDedupSignature, ExactFindDedups
    from datatrove.pipeline.filters import LambdaFilter
    from datatrove.pipeline.filters.base_filter import BaseFilter
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.readers.base import BaseDiskReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

    from schemas.config import FiltersConfig, ScrubConfig
    from transforms.cleaning.language_extensions import language_of
    from transforms.cleaning.quality_checks import check_file
    from transforms.dedup.exact_keys import dedup_key
    from transforms.sources.file_decoding import decode_file

    assert_beam_never_loaded()

    class RepositoryReader(BaseDiskReader):
        """One input path = one repository folder; every regular file ≤ 1 MB, UTF-8 text, is a document."""

        name = "repository reader"

        def __init__(self, data_folder: str, paths_file: str, stars: dict):
            super().__init__(data_folder, paths_file=paths_file)
            self.stars = stars

        def read_file(self, filepath: str):
            top = os.path.join(self.data_folder.path, filepath)
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for name in sorted(filenames):
                    path = os.path.join(dirpath, name)
                    if os.path.islink(path) or os.path.getsize(path) > MAX_FILE_BYTES:
                        continue
                    with open(path, "rb") as f:
                        text, problem = decode_file(f.read())
                    if problem:
                        continue
                    rel = os.path.relpath(path, top)
                    yield Document(text=text, id=f"{filepath}/{rel}", metadata={"path": rel, "stars": self.stars[filepath]})

    class CodeQualityFilter(BaseFilter):
        """The pipeline's quality filters (paper §3.1), as a datatrove filter."""

        name = "code quality"

        def filter(self, doc):
            failed = check_file(doc.text, FiltersConfig())
            return (False, failed[0]) if failed else True

    def content_key(doc: Document) -> bytes:
        return dedup_key(doc.metadata["path"], doc.text).encode()

    def priority(doc: Document) -> int:
        return doc.metadata["stars"] + 1  # datatrove keeps the highest priority, in [1, 65535]

    with open(os.path.join(work, METADATA_FILE)) as f:
        stars = {repo: meta["stars"] for repo, meta in json.load(f).items()}
    paths_file = os.path.join(out, "repos.txt")
    os.makedirs(out)
    with open(paths_file, "w") as f:
        f.write("".join(f"{repo}\n" for repo in sorted(stars)))
    dedup = ExactDedupConfig(content_getter=content_key, document_priority=priority)
    parts = {name: os.path.join(out, name) for name in ("filtered", "signatures", "duplicates", "logs", "output")}
    signatures = LocalPipelineExecutor(
        [
            RepositoryReader(os.path.join(work, REPOS_DIR), paths_file, stars),
            LambdaFilter(lambda doc: language_of(doc.metadata["path"]) is not None),
            CodeQualityFilter(),
            JsonlWriter(parts["filtered"], compression=None),
            ExactDedupSignature(parts["signatures"], dedup),
            beam_never_loaded,
        ],
        tasks=tasks,
        workers=workers,
        logging_dir=os.path.join(parts["logs"], "signatures"),
    )
    find = LocalPipelineExecutor(
        [ExactFindDedups(parts["signatures"], parts["duplicates"], dedup), beam_never_loaded],
        tasks=1,
        logging_dir=os.path.join(parts["logs"], "find"),
        depends=signatures,
    )
    write = LocalPipelineExecutor(
        [
            JsonlReader(parts["filtered"]),
            ExactDedupFilter(parts["duplicates"], dedup),
            PIIFormatter(remove_ips=False, email_replacement=ScrubConfig().replacement),
            ParquetWriter(parts["output"], compression="zstd"),
            beam_never_loaded,
        ],
        tasks=tasks,
        workers=workers,
        logging_dir=os.path.join(parts["logs"], "write"),
        depends=find,
    )
    write.run()
    assert_beam_never_loaded()
    return {"kept": parquet_rows(parts["output"])}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=200.0, help="corpus size in MB (default 200)")
    parser.add_argument("--copies", type=int, default=2, help="copies of the distinct files (default 2)")
    parser.add_argument("--root", default=sysconfig.get_paths()["purelib"], help="directory of .py files")
    parser.add_argument("--workers", type=int, default=2, help="datatrove worker processes (default 2)")
    parser.add_argument("--tasks", type=int, default=4, help="datatrove tasks (default 4)")
    parser.add_argument("--work", default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--side", choices=["ours", "datatrove"], help=argparse.SUPPRESS)  # a child's job
    args, beam_args = parser.parse_known_args(argv)
    if args.side:
        out = os.path.join(args.work, f"out-{args.side}")
        shutil.rmtree(out, ignore_errors=True)
        if args.side == "ours":
            result = run_ours(args.work, out, beam_args)
        else:
            result = run_datatrove(args.work, out, args.tasks, args.workers)
        print(json.dumps(result))
        return

    beam_args = beam_args or ["--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"]
    work = tempfile.mkdtemp(prefix="bench-peer-", dir=args.work)
    try:
        corpus = build_corpus(args.root, work, args.mb, args.copies)
        mb = corpus["bytes"] / 1e6
        print(
            f"corpus: {corpus['files']} files ({corpus['distinct_py_files']} distinct .py x {args.copies} copies "
            f"+ a LICENSE per repository), {mb:.1f} MB, {corpus['repos']} repositories"
        )
        print(f"ours: {' '.join(beam_args)}; datatrove: LocalPipelineExecutor tasks={args.tasks} workers={args.workers}")
        warm_cache(os.path.join(work, REPOS_DIR))
        me = [sys.executable, os.path.abspath(__file__), "--work", work, "--workers", str(args.workers)]
        sides = {
            "ours": [*me, "--side", "ours", *beam_args],
            "datatrove": [*me, "--side", "datatrove", "--tasks", str(args.tasks)],
        }
        results = {}
        for name, command in sides.items():
            run = measure(command, os.path.join(work, f"{name}.log"))
            results[name] = dict(run, **json.loads(run["stdout"].strip().splitlines()[-1]))
        print_side_by_side(results, corpus["files"], mb, extra="kept")
        for name, r in results.items():  # the busiest process bounds the wall time on 2 cores
            busy = [f"{seconds:.1f}" for seconds in r["process_cpu"] if seconds >= 0.5]
            print(f"{name}: CPU s of each process over 0.5 s, largest first: {', '.join(busy)}")
        ours = results["ours"]
        print(f"ours: {ours['dedup_rejected']} duplicates rejected, {ours['emails_replaced']} emails replaced")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
