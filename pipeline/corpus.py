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
`CorpusFlow`; every stage's `StageOutputs` go through `flow.add_stage`.

Run it with the CLI (`code-corpus run`); pass Beam flags after the app's own, e.g.
`--direct_running_mode=multi_processing --direct_num_workers=2`, or
`--runner DataflowRunner --project P --region R --temp_location gs://B/tmp`.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath

import apache_beam as beam

from infra import storage
from infra.accounting import check_counts, total_rejected
from infra.spill import SCRATCH_DIR
from infra.version import MANIFEST
from infra.writers import WriteParquetShards, read_json, write_json
from pipeline.document_stats import DocumentStats
from schemas import arrow, stage_names
from schemas.config import ConfigError, PipelineConfig, check_star_boundaries
from schemas.records import Rejected
from transforms.base import ApplyStage, fused, stage_names_of
from transforms.cleaning.decontamination import DecontaminateFn, announce_checks, load_deny_list
from transforms.cleaning.filters import QualityFilterFn
from transforms.cleaning.language import LanguageFn
from transforms.cleaning.license import LicenseFilterFn
from transforms.cleaning.pii.scrub import ScrubFn
from transforms.dedup.exact import ExactDedup, bloom_path
from transforms.dedup.near import NearDedup
from transforms.formatting.buckets import buckets_entry, entry_boundaries
from transforms.formatting.code_files import FormatCodeFn, StarBuckets
from transforms.formatting.notebooks import ConvertNotebooksFn
from transforms.sources.local.source import SNAPSHOT, ReadLocalRepos, check_local_sources, list_repos
from transforms.sources.registry import network_sources
from transforms.stackoverflow.dump_files import DumpError, find_dump_files, split_ranges
from transforms.stackoverflow.format import ScoreBuckets, format_threads
from transforms.stackoverflow.join import SCORES, JoinThreads
from transforms.stackoverflow.source import ReadStackExchangeDump
from transforms.stage_outputs import STUBS, StageOutputs, by_path, read_counts_and_files, write_counts_and_files

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
    # (stage, stat, next stage): where a stage groups many records into one, the stat it
    # keeps of the groups it emits must equal what the next stage reads.
    links: list = dataclasses.field(default_factory=list)

    @property
    def scratch_dir(self) -> str:
        """Where stages spill records during the run (removed before the version is committed)."""
        return posixpath.join(self.out_dir, SCRATCH_DIR)

    def add_stage(self, outputs: StageOutputs) -> beam.PCollection:
        """Collect a stage's rejected records, tallies, files written and manifest entries; return its kept records."""
        self.rejected += outputs.rejected
        self.tallies.append(outputs.tally)
        self.files_written += outputs.files
        for key, value in outputs.manifest.items():
            self.add_manifest_entry(key, value)
        return outputs.kept

    def add_manifest_entry(self, key: str, value: beam.PCollection) -> None:
        """A single-element PCollection whose value becomes `manifest[key]`."""
        path = posixpath.join(self.out_dir, MANIFEST_PARTS_DIR, f"{key}.json")
        value | f"WriteManifestEntry_{key}" >> beam.Map(lambda v: write_json(path, v))


def code_stages(flow: CorpusFlow) -> list[beam.PTransform]:
    """The per-file cleaning stages of the code path, in the paper's order (§3.1), with
    notebooks converted to their text and code (§3.1, A.3) before anything judges them.

    Files they name (deny-list, earlier versions' Bloom filters) are checked now,
    so a wrong path fails before the run; dedup writes its filter into the version.
    """
    config = flow.config
    decont, filters, dedup = config.decontamination, config.filters, config.dedup
    denied = load_deny_list(config.resolve(decont.denied_repos)) if decont.denied_repos else frozenset()
    announce_checks(decont.humaneval, denied, decont.denied_repos)
    previous = tuple(config.resolve(v) for v in dedup.previous_versions)
    for i, version in enumerate(previous):
        if not storage.exists(bloom_path(version)):
            raise ConfigError(f"dedup.previous_versions[{i}]: {bloom_path(version)!r} does not exist; name a version directory")
    return [
        ApplyStage(LicenseFilterFn(config.license.allow)),
        ApplyStage(LanguageFn(config.language.languages)),
        ApplyStage(ConvertNotebooksFn()),  # so every later stage judges a notebook's text, not its JSON
        ApplyStage(DecontaminateFn(decont.humaneval, decont.min_match_chars, denied)),
        ApplyStage(QualityFilterFn(filters)),
        ExactDedup(flow.scratch_dir, flow.out_dir, dedup.bloom_capacity, dedup.bloom_error_rate, previous),
        *near_dedup_stages(flow, previous),
        ApplyStage(ScrubFn(config.scrub)),
    ]


def near_dedup_stages(flow: CorpusFlow, previous: tuple[str, ...]) -> list[beam.PTransform]:
    """The near-dedup stage as configured under `dedup.near`: none when it is off (the paper's corpus)."""
    near = flow.config.dedup.near
    if not near.enabled:
        return []
    return [NearDedup(near, flow.scratch_dir, flow.out_dir, flow.config.output.document_shards, previous)]


def local_repos(config: PipelineConfig, out_dir: str | None = None) -> list[list]:
    """The entries of each local source, listed and checked now so a bad path or metadata fails before the run."""
    listed, roots = [], []
    for i, source in enumerate(config.sources.local):
        root = config.resolve(source.path)
        if not os.path.isdir(root):
            raise ConfigError(f"sources.local[{i}].path: {root!r} is not a directory; point it at a folder of repositories")
        metadata = config.resolve(source.metadata) if source.metadata else None
        if metadata and not os.path.isfile(metadata):
            raise ConfigError(f"sources.local[{i}].metadata: {metadata!r} does not exist")
        try:
            listed.append(list_repos(root, metadata))
        except ConfigError as e:
            raise ConfigError(f"sources.local[{i}].metadata: {e}") from None
        roots.append(root)
    check_local_sources(roots, listed, out_dir)
    return listed


def read_code_sources(flow: CorpusFlow) -> list[beam.PCollection]:
    """Every configured code source's RepoFile PCollection (its rejects and tallies go to flow)."""
    files = []
    for i, repos in enumerate(local_repos(flow.config, flow.out_dir)):
        read = flow.pipeline | f"ReadLocal{i}" >> ReadLocalRepos(repos, *flow.config.read.limits())
        files.append(flow.add_stage(read))
        flow.snapshots.append(read.extras[SNAPSHOT])
    # The network sources' state lives beside the versions (<out>/<name>/crawl/), so it outlives a failed run.
    for name, source in network_sources(flow.config, posixpath.dirname(flow.out_dir)):
        read = flow.pipeline | f"Read_{name}" >> source
        files.append(flow.add_stage(read))
        flow.snapshots.append(read.extras[SNAPSHOT])
    return files


def clean_code(flow: CorpusFlow, files: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
    """Run the cleaning stages in order; return the RepoFiles that survive them all, and the
    same files without content: the STUBS of the last stage that gives them (the dedup stages;
    the stages after them keep every file)."""
    chain, stubs = [stage_names.READ], None
    for stage in fused(code_stages(flow)):
        outputs = files | stage
        files = flow.add_stage(outputs)
        stubs = outputs.extras.get(STUBS, stubs)
        chain += stage_names_of(stage)
    flow.chains.append(chain)
    return files, stubs


def pinned_star_buckets(config: PipelineConfig) -> dict | None:
    """The `star_buckets` entry the config pins (None: compute it), read now so a bad pin fails first."""
    fmt = config.format
    if fmt.star_boundaries is not None:
        return buckets_entry(fmt.star_boundaries, pinned_from="format.star_boundaries")
    if fmt.star_boundaries_from is None:
        return None
    manifest = posixpath.join(config.resolve(fmt.star_boundaries_from), MANIFEST)
    try:
        boundaries = read_json(manifest)["star_buckets"]["boundaries"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"format.star_boundaries_from: {manifest!r} has no star_buckets.boundaries ({type(e).__name__}: {e}); "
            "point it at a version directory built by the corpus stage"
        ) from None
    check_star_boundaries(boundaries, f"format.star_boundaries_from: star_buckets.boundaries in {manifest!r}")
    return buckets_entry(boundaries, pinned_from=fmt.star_boundaries_from)


def format_code(flow: CorpusFlow, files: beam.PCollection, stubs: beam.PCollection) -> beam.PCollection:
    """Clean RepoFiles → Documents (the last stage of the code chain), with the dstars buckets.

    The buckets come from `stubs`, the same files without content: were they computed
    from `files`, the local runner would hold every file until the buckets were known.
    """
    pinned = pinned_star_buckets(flow.config)
    if pinned is None:
        star_buckets = stubs | "StarBuckets" >> StarBuckets()
    else:
        star_buckets = flow.pipeline | "PinnedStarBuckets" >> beam.Create([pinned])
    flow.add_manifest_entry("star_buckets", star_buckets)
    boundaries = beam.pvalue.AsSingleton(star_buckets | "StarBoundaries" >> beam.Map(entry_boundaries))
    format_fn = FormatCodeFn(flow.config.seed)
    documents = flow.add_stage(files | "FormatCode" >> ApplyStage(format_fn, star_boundaries=boundaries))
    flow.chains[-1].append(format_fn.stage)
    flow.document_stages.append(format_fn.stage)
    return documents


def stackoverflow_ranges(config: PipelineConfig) -> list:
    """The byte ranges of every StackOverflow dump, listed now so a bad path fails before the run."""
    files, sites = [], {}
    for i, path in enumerate(config.sources.stackoverflow):
        try:
            dump = find_dump_files(config.resolve(path))
        except DumpError as e:
            raise ConfigError(f"sources.stackoverflow[{i}]: {e}") from None
        site = dump[0].site
        if site in sites:
            raise ConfigError(f"sources.stackoverflow[{i}]: site {site!r} is already sources.stackoverflow[{sites[site]}]")
        sites[site] = i
        files += dump
    return split_ranges(files, config.stackoverflow.range_bytes)


def stackoverflow_documents(flow: CorpusFlow) -> None:
    """StackOverflow dumps → Documents (paper §3.2, Figure 6c), accounted in two chains:
    posts and comments (read → join), then threads (format), as many as the join's
    `threads` stat."""
    ranges = stackoverflow_ranges(flow.config)
    if not ranges:
        return
    limits = flow.config.stackoverflow
    records = flow.add_stage(flow.pipeline | "ReadStackOverflow" >> ReadStackExchangeDump(ranges, limits.max_row_bytes))
    join = records | "JoinStackOverflow" >> JoinThreads(limits, flow.scratch_dir)
    threads = flow.add_stage(join)  # spill files of Threads: they wait for the buckets on storage
    buckets = join.extras[SCORES] | "ScoreBuckets" >> ScoreBuckets()
    flow.add_manifest_entry("score_buckets", buckets.entry)
    formatted = threads | "FormatStackOverflow" >> format_threads(flow.config.seed, buckets.boundaries, flow.config.scrub)
    flow.documents.append(flow.add_stage(formatted))
    flow.chains += [[stage_names.STACKOVERFLOW_READ, stage_names.STACKOVERFLOW_JOIN], [stage_names.STACKOVERFLOW_FORMAT]]
    flow.links.append((stage_names.STACKOVERFLOW_JOIN, "threads", stage_names.STACKOVERFLOW_FORMAT))
    flow.document_stages.append(stage_names.STACKOVERFLOW_FORMAT)


def build_corpus(p: beam.Pipeline, config: PipelineConfig, out_dir: str) -> CorpusFlow:
    """Wire the corpus graph into `p`."""
    flow = CorpusFlow(p, config, out_dir)
    sources = read_code_sources(flow)
    if sources:
        files = sources[0] if len(sources) == 1 else sources | "AllCodeSources" >> beam.Flatten()
        flow.documents.append(format_code(flow, *clean_code(flow, files)))
    stackoverflow_documents(flow)
    if not flow.documents:
        raise ConfigError("sources: no source configured; add e.g. sources.local: [{path: repos}]")
    write_outputs(flow)
    return flow


def write_outputs(flow: CorpusFlow) -> None:
    out_dir, output = flow.out_dir, flow.config.output
    # The writers take the lists as they are: a Flatten before them would gather every document.
    documents = WriteParquetShards(
        out_dir, "documents", arrow.DOCUMENT, output.document_shards, unique_ids=True, summary=DocumentStats
    )
    rejected = WriteParquetShards(out_dir, "rejected", arrow.REJECTED, output.rejected_shards)
    # Each stage's excerpts are cut where the stage made them (the step fuses with it), before any shuffle.
    cut = [
        r | f"CutExcerpts{i}" >> beam.Map(Rejected.with_excerpt_cut, output.rejected_excerpt_bytes)
        for i, r in enumerate(flow.rejected)
    ]
    written = [tuple(flow.documents) | "WriteDocuments" >> documents, tuple(cut) | "WriteRejected" >> rejected]
    if flow.snapshots:
        written.append(
            tuple(flow.snapshots)
            | "WriteSnapshot" >> WriteParquetShards(out_dir, "snapshot", arrow.SNAPSHOT, 1, key=lambda s: f"{s.source}/{s.repo}")
        )
    write_counts_and_files(out_dir, flow.tallies, written + flow.files_written)


def run_corpus(ctx) -> dict:
    """Build documents/, rejected/ and snapshot/ of the version; return its manifest part."""
    with beam.Pipeline(options=ctx.pipeline_options) as p:
        flow = build_corpus(p, ctx.config, ctx.output_dir)
    storage.delete_tree(flow.scratch_dir)
    counts, files = read_counts_and_files(ctx.output_dir)
    document_stats = DocumentStats.summed(f.pop("summary") for f in files if "summary" in f)
    rows = {name: sum(f["rows"] for f in files if f["path"].startswith(name + "/")) for name in ("documents", "rejected")}
    check_counts(counts, flow.chains, {"documents": (flow.document_stages, rows["documents"])}, flow.links)
    if rows["rejected"] != total_rejected(counts):
        raise RuntimeError(f"rejected/ holds {rows['rejected']} rows but the stages rejected {total_rejected(counts)}")
    entries = read_manifest_entries(ctx.output_dir)
    return {
        **entries,
        "flow": flow.chains,
        "counts": counts,
        "files": by_path(files),
        "documents": rows["documents"],
        "document_stats": document_stats.to_json(),
        "rejected": rows["rejected"],
    }


def read_manifest_entries(out_dir: str) -> dict:
    """The `_manifest/<key>.json` values written by the graph, removed once read."""
    parts_dir = posixpath.join(out_dir, MANIFEST_PARTS_DIR)
    names = [n for n in storage.list_files(parts_dir) if n.endswith(".json")]
    entries = {n[: -len(".json")]: read_json(posixpath.join(parts_dir, n)) for n in names}
    storage.delete_tree(parts_dir)
    return entries
