"""The corpus stage: sources → cleaning stages → Documents, as one Beam pipeline.

    local repos ─ ReadLocalRepos ─┐
    (API/archive sources) ────────┼─ RepoFile ─ license ─ … ─ format ─ Document ─┬─ documents/*.parquet
                                  │                                               │
    StackOverflow dump ─ … ───────┼───────────────────────────────── Document ───┘
                                  └─ Rejected from every stage ─────────────────── rejected/*.parquet
    tallies of every stage ─ sum per (stage, kind, reason) ─ _counts.json
    files written ─ _files.json       repository snapshots ─ snapshot/*.parquet
    small results for the manifest (e.g. bucket boundaries) ─ _manifest/<key>.json

The graph is built by a few functions, one per part of the flow, that all add to one
`CorpusFlow`; each stage's outputs (kept, rejected, tally) go through `flow.add_stage`.

Run it with the CLI (`code-corpus run`); pass Beam flags after the app's own, e.g.
`--direct_running_mode=multi_processing --direct_num_workers=2`, or
`--runner DataflowRunner --project P --region R --temp_location gs://B/tmp`.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.accounting import check_counts, fold_tallies, total_rejected
from pipeline.writers import WriteParquetShards, WriteSmallJson, read_json, write_json
from schemas import arrow
from schemas.config import ConfigError, PipelineConfig
from transforms.base import ApplyStage
from transforms.formatting import ToDocumentFn
from transforms.license import LicenseFilterFn
from transforms.sources.local import STAGE as READ_STAGE
from transforms.sources.local import ReadLocalRepos, list_repos

COUNTS_FILE = "_counts.json"
FILES_FILE = "_files.json"
MANIFEST_PARTS_DIR = "_manifest"


@dataclasses.dataclass
class CorpusFlow:
    """What the graph builders add to: outputs to write and the facts the checks need."""

    pipeline: beam.Pipeline
    config: PipelineConfig
    out_dir: str
    rejected: list = dataclasses.field(default_factory=list)
    tallies: list = dataclasses.field(default_factory=list)
    files_written: list = dataclasses.field(default_factory=list)
    snapshots: list = dataclasses.field(default_factory=list)
    documents: list = dataclasses.field(default_factory=list)
    chains: list = dataclasses.field(default_factory=list)  # stage names, each reading what the one before kept
    document_stages: list = dataclasses.field(default_factory=list)  # stages whose kept records are Documents

    def add_stage(self, outputs) -> beam.PCollection:
        """Collect a stage's rejected and tally outputs; return its kept records."""
        self.rejected.append(outputs.rejected)
        self.tallies.append(outputs.tally)
        return outputs.kept

    def add_manifest_entry(self, key: str, value: beam.PCollection) -> None:
        """A single-element PCollection whose value becomes `manifest[key]`."""
        path = posixpath.join(self.out_dir, MANIFEST_PARTS_DIR, f"{key}.json")
        value | f"WriteManifestEntry_{key}" >> beam.Map(lambda v: write_json(path, v))


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
    return listed


def read_code_sources(flow: CorpusFlow) -> list[beam.PCollection]:
    """Every configured code source's RepoFile PCollection (its rejects and tallies go to flow)."""
    files = []
    for i, repos in enumerate(local_repos(flow.config)):
        read = flow.pipeline | f"ReadLocal{i}" >> ReadLocalRepos(repos, flow.config.read.max_file_bytes)
        files.append(flow.add_stage(read))
        flow.snapshots.append(read.snapshot)
    return files


def clean_code(flow: CorpusFlow, files: beam.PCollection) -> beam.PCollection:
    """Run the cleaning stages in order; return the RepoFiles that survive them all."""
    chain = [READ_STAGE]
    for stage in code_stages(flow.config):
        files = flow.add_stage(files | stage)
        chain.append(stage_name(stage))
    flow.chains.append(chain)
    return files


def format_code(flow: CorpusFlow, files: beam.PCollection) -> beam.PCollection:
    """Clean RepoFiles → Documents (the last stage of the code chain)."""
    documents = flow.add_stage(files | "FormatCode" >> ApplyStage(ToDocumentFn()))
    flow.chains[-1].append(ToDocumentFn.stage)
    flow.document_stages.append(ToDocumentFn.stage)
    return documents


def build_corpus(p: beam.Pipeline, config: PipelineConfig, out_dir: str) -> CorpusFlow:
    """Wire the corpus graph into `p`."""
    flow = CorpusFlow(p, config, out_dir)
    sources = read_code_sources(flow)
    if sources:
        files = sources[0] if len(sources) == 1 else sources | "AllCodeSources" >> beam.Flatten()
        flow.documents.append(format_code(flow, clean_code(flow, files)))
    if not flow.documents:
        raise ConfigError("sources: no source configured; add e.g. sources.local: [{path: repos}]")
    write_outputs(flow)
    return flow


def write_outputs(flow: CorpusFlow) -> None:
    out_dir, output = flow.out_dir, flow.config.output
    documents = flow.documents[0] if len(flow.documents) == 1 else flow.documents | "AllDocuments" >> beam.Flatten()
    written = [
        documents | "WriteDocuments" >> WriteParquetShards(out_dir, "documents", arrow.DOCUMENT, output.document_shards),
        flow.rejected
        | "AllRejected" >> beam.Flatten()
        | "WriteRejected" >> WriteParquetShards(out_dir, "rejected", arrow.REJECTED, output.rejected_shards),
    ]
    if flow.snapshots:
        written.append(
            flow.snapshots
            | "AllSnapshots" >> beam.Flatten()
            | "WriteSnapshot" >> WriteParquetShards(out_dir, "snapshot", arrow.SNAPSHOT, 1, key=lambda s: f"{s.source}/{s.repo}")
        )
    (
        flow.tallies
        | "AllTallies" >> beam.Flatten()
        | "SumTallies" >> beam.CombinePerKey(sum)
        | "WriteCounts" >> WriteSmallJson(posixpath.join(out_dir, COUNTS_FILE))
    )
    (
        written + flow.files_written
        | "AllFilesWritten" >> beam.Flatten()
        | "WriteFileList" >> WriteSmallJson(posixpath.join(out_dir, FILES_FILE))
    )


def run_corpus(ctx) -> dict:
    """Build documents/, rejected/ and snapshot/ of the version; return its manifest part."""
    with beam.Pipeline(options=ctx.pipeline_options) as p:
        flow = build_corpus(p, ctx.config, ctx.output_dir)
    counts = fold_tallies(read_json(posixpath.join(ctx.output_dir, COUNTS_FILE)))
    files = read_json(posixpath.join(ctx.output_dir, FILES_FILE))
    rows = {name: sum(f["rows"] for f in files if f["path"].startswith(name + "/")) for name in ("documents", "rejected")}
    check_counts(counts, flow.chains, {"documents": (flow.document_stages, rows["documents"])})
    if rows["rejected"] != total_rejected(counts):
        raise RuntimeError(f"rejected/ holds {rows['rejected']} rows but the stages rejected {total_rejected(counts)}")
    entries = read_manifest_entries(ctx.output_dir)
    for name in (COUNTS_FILE, FILES_FILE):
        FileSystems.delete([posixpath.join(ctx.output_dir, name)])
    return {
        **entries,
        "flow": flow.chains,
        "counts": counts,
        "files": {f["path"]: {k: v for k, v in f.items() if k != "path"} for f in files},
        "documents": rows["documents"],
        "rejected": rows["rejected"],
    }


def read_manifest_entries(out_dir: str) -> dict:
    """The `_manifest/<key>.json` values written by the graph, removed once read."""
    parts_dir = posixpath.join(out_dir, MANIFEST_PARTS_DIR)
    if not FileSystems.exists(parts_dir):
        return {}
    paths = sorted(m.path for m in FileSystems.match([posixpath.join(parts_dir, "*.json")])[0].metadata_list)
    entries = {posixpath.basename(p)[: -len(".json")]: read_json(p) for p in paths}
    FileSystems.delete([parts_dir])
    return entries
