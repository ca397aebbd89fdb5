"""The corpus stage: sources → cleaning stages → Documents, as one Beam pipeline.

    local repos ─ ReadLocalRepos ─┐
                                  ├─ RepoFile ─ license ─ … ─ format ─ Document ─ documents/*.parquet
    (other sources) ──────────────┘      │          │            │
                                         └──────────┴── Rejected ┴─────────────── rejected/*.parquet
    tallies of every stage ─ sum per (stage, kind, reason) ─ _counts.json
    files written ─ _files.json          repository snapshots ─ snapshot/*.parquet

Run it with the CLI (`code-corpus run`); pass Beam flags after the app's own, e.g.
`--direct_running_mode=multi_processing --direct_num_workers=2`, or
`--runner DataflowRunner --project P --region R --temp_location gs://B/tmp`.
"""

from __future__ import annotations

import os
import posixpath

import apache_beam as beam

from pipeline.accounting import check_counts, fold_tallies, total_rejected
from pipeline.writers import WriteParquetShards, WriteSmallJson, read_json
from schemas import arrow
from schemas.config import ConfigError, PipelineConfig
from transforms.base import ApplyStage
from transforms.formatting import ToDocumentFn
from transforms.license import LicenseFilterFn
from transforms.sources.local import STAGE as READ_STAGE
from transforms.sources.local import ReadLocalRepos, list_repos

COUNTS_FILE = "_counts.json"
FILES_FILE = "_files.json"


def code_stages(config: PipelineConfig) -> list[beam.PTransform]:
    """The per-file cleaning stages of the code path, in the paper's order (§3.1)."""
    return [ApplyStage(LicenseFilterFn(config.license.allow))]


def stage_name(transform: beam.PTransform) -> str:
    return transform.fn.stage if isinstance(transform, ApplyStage) else transform.stage


def local_repos(config: PipelineConfig) -> list[list]:
    """The repositories of each local source, listed now so a bad path fails before the run."""
    listed = []
    for i, source in enumerate(config.sources.local):
        root = config.resolve(source.path)
        if not os.path.isdir(root):
            raise ConfigError(f"sources.local[{i}].path: {root!r} is not a directory; point it at a folder of repositories")
        metadata = config.resolve(source.metadata) if source.metadata else None
        if metadata and not os.path.isfile(metadata):
            raise ConfigError(f"sources.local[{i}].metadata: {metadata!r} does not exist")
        listed.append(list_repos(root, metadata))
    if not listed:
        raise ConfigError("sources: no source configured; add e.g. sources.local: [{path: repos}]")
    return listed


def build_corpus(p: beam.Pipeline, config: PipelineConfig, out_dir: str) -> dict:
    """Wire the corpus graph into `p`; return the flow description the checks need."""
    rejected, tallies, files_written = [], [], []
    reads = []
    for i, repos in enumerate(local_repos(config)):
        read = p | f"ReadLocal{i}" >> ReadLocalRepos(repos, config.read.max_file_bytes)
        reads.append(read)
        rejected.append(read.rejected)
        tallies.append(read.tally)
    snapshots = [r.snapshot for r in reads]
    files = reads[0].files
    if len(reads) > 1:
        files = [r.files for r in reads] | "AllSourceFiles" >> beam.Flatten()

    chain = [READ_STAGE]
    for stage in code_stages(config):
        out = files | stage
        files = out.kept
        rejected.append(out.rejected)
        tallies.append(out.tally)
        chain.append(stage_name(stage))

    formatted = files | "Format" >> ApplyStage(ToDocumentFn())
    rejected.append(formatted.rejected)
    tallies.append(formatted.tally)
    chain.append(ToDocumentFn.stage)
    documents = formatted.kept

    files_written.append(
        documents | "WriteDocuments" >> WriteParquetShards(out_dir, "documents", arrow.DOCUMENT, config.output.document_shards)
    )
    files_written.append(
        rejected
        | "AllRejected" >> beam.Flatten()
        | "WriteRejected" >> WriteParquetShards(out_dir, "rejected", arrow.REJECTED, config.output.rejected_shards)
    )
    files_written.append(
        snapshots
        | "AllSnapshots" >> beam.Flatten()
        | "WriteSnapshot" >> WriteParquetShards(out_dir, "snapshot", arrow.SNAPSHOT, 1, key=lambda s: f"{s.source}/{s.repo}")
    )
    (
        tallies
        | "AllTallies" >> beam.Flatten()
        | "SumTallies" >> beam.CombinePerKey(sum)
        | "WriteCounts" >> WriteSmallJson(posixpath.join(out_dir, COUNTS_FILE))
    )
    files_written | "AllFilesWritten" >> beam.Flatten() | "WriteFileList" >> WriteSmallJson(posixpath.join(out_dir, FILES_FILE))
    return {"chains": [chain], "document_stages": [ToDocumentFn.stage]}


def run_corpus(ctx) -> dict:
    """Build documents/, rejected/ and snapshot/ of the version; return its manifest part."""
    flow = {}
    with beam.Pipeline(options=ctx.pipeline_options) as p:
        flow = build_corpus(p, ctx.config, ctx.output_dir)
    counts = fold_tallies(read_json(posixpath.join(ctx.output_dir, COUNTS_FILE)))
    files = read_json(posixpath.join(ctx.output_dir, FILES_FILE))
    rows = {name: sum(f["rows"] for f in files if f["path"].startswith(name + "/")) for name in ("documents", "rejected")}
    check_counts(counts, flow["chains"], {"documents": (flow["document_stages"], rows["documents"])})
    if rows["rejected"] != total_rejected(counts):
        raise RuntimeError(f"rejected/ holds {rows['rejected']} rows but the stages rejected {total_rejected(counts)}")
    for name in (COUNTS_FILE, FILES_FILE):
        os.remove(posixpath.join(ctx.output_dir, name))
    return {
        "flow": flow["chains"],
        "counts": counts,
        "files": {f["path"]: {k: v for k, v in f.items() if k != "path"} for f in files},
        "documents": rows["documents"],
        "rejected": rows["rejected"],
    }
