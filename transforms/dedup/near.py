"""Near-dedup stage: one file per cluster of near-duplicates, by MinHash LSH (beyond the paper).

The paper removes exact copies only; every current code corpus (The Stack, StarCoder,
datatrove, NeMo Curator) also removes near-copies: forks with a changed line, vendored
copies, generated variants. The graph decides on small values and then filters the
files streamed back from spill files, so it is exact at any scale and reads `files` once
(as exact dedup's two passes do; the local runner would otherwise hold the corpus for
each later step that reads it while the clusters are decided):

    files ─ SignFiles ─┬ files, whole ─ <scratch>/near-dedup-*.spill (one per bundle): spill paths,
                       │                 and places (file id, its spill path)
                       ├ (band keys, (node, sketch)) ──────────┐
                       └ signatures ─ dedup/minhash/*.parquet   ├ sorted runs ─ BucketEdges ─ Distinct ─ candidate edges
    earlier versions' dedup/minhash/ ─ (band keys, (node, sketch)) ┘  (near_bands.py; near_versions.py)
    candidate edges ─ [CandidateJaccard: edge ends joined with places (CoGroupByKey on ids),
                       grouped by spill file; each spill file streamed, its candidate files
                       send their shingles to their edges: sorted runs by edge, merged per
                       partition (near_check.py)] ─ edges at the threshold
    edges ─ Clusters: connected components, a few label rounds and one union of what is left (near_clusters.py)
          ─ (survivor node, file node) of every file whose label is not its own
          ─ its Jaccard: the check's where the survivor is a neighbour (a join on edges), else
            [SurvivorJaccard: the same as CandidateJaccard] ─ (id, (survivor node, Jaccard)), joined with places
    (spill path, its rejected ids) ─ DropNearDuplicates (each spill file streamed) ─┬ kept
                                                     └ rejected: near-duplicate,
                                                         near-duplicate-previous-version

A node is a file's `survivor_rank` (most stars, then smallest id), as exact dedup
chooses survivors, so the least node of a connected component is its survivor.
Each file of an LSH band bucket is linked to the earlier file of the bucket whose sketch
agrees most (transforms/dedup/near_bands.py), which keeps the bucket connected, gives the
check links it can keep, and never lists all pairs of a big bucket. A rejection's
detail names its survivor and their Jaccard (`detail_of`): connected components join
A and C through B, so that Jaccard may be below the threshold.

The (band key, (node, sketch)) pairs, one per band of a file (a file's bands reach the run writer
as one element), cross no shuffle: they are sorted into runs on scratch
storage and merged per partition of band keys (transforms/dedup/near_bands.py), so
the runner never holds them. What crosses the shuffles is ids, star counts, run and
spill paths; the check's shingle hashes go to sorted runs the same way
(transforms/dedup/near_check.py). Contents travel once; the spill files and runs are scratch (`scratch_dir`,
removed by the run). Decisions reach the files by joins on ids, not side-input lookups:
the local runner weighs every looked-up value by walking all loaded modules
(milliseconds each). Only earlier versions'
signatures, which are not in spill files, are matched by a lookup (transforms/dedup/id_lookup.py).
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from infra.runtime import configure_worker
from infra.spill import read_spill
from infra.writers import WriteParquetShards
from schemas import stage_names
from schemas.config import NearDedupConfig
from schemas.records import Rejected
from transforms.base import ApplyStage
from transforms.dedup import id_lookup
from transforms.dedup.near_bands import EdgesOfBands
from transforms.dedup.near_check import EdgeSimilarities
from transforms.dedup.near_clusters import ConnectedComponents
from transforms.dedup.near_files import (
    FILE_STUBS,
    PLACES,
    SIGNATURES,
    SPILLS,
    ShinglesOfCandidatesFn,
    SignFilesFn,
    to_spills,
)
from transforms.dedup.near_versions import (
    SIGNATURE_DTYPE,
    SIGNATURE_SCHEMA,
    SIGNATURES_DIR,
    BandEarlierFn,
    SignaturesOfCandidatesFn,
    earlier_parts,
    earlier_signature_files,
    is_earlier,
    read_earlier_signatures,
    version_name,
)
from transforms.record_fn import RecordFn
from transforms.stage_outputs import STUBS, StageOutputs

REASON = "near-duplicate"
REASON_PREVIOUS = "near-duplicate-previous-version"
UNMEASURED = "unmeasured"  # survivor edges that are no checked pair (a cluster joined through others)


def detail_of(survivor: tuple, similarity: float) -> str:
    """A rejection's detail: `survivor=<id> jaccard=<J>`, and `version=<name>/<version>` for an earlier version's
    file (whose Jaccard is estimated from the signatures); J to three decimals."""
    if is_earlier(survivor):
        file_id, version = earlier_parts(survivor)
        return f"survivor={file_id} version={version} jaccard={similarity:.3f}"
    return f"survivor={survivor[1]} jaccard={similarity:.3f}"


class DropNearDuplicatesFn(RecordFn):
    """(spill file, {"rejected": [(id, (survivor node, Jaccard))]}) → each file of the spill, kept unless it is
    named there (its cluster's survivor is another file, or a file of an earlier version)."""

    stage = stage_names.NEAR_DEDUP
    each_output_is_an_input = True

    def setup(self):
        configure_worker()

    def __call__(self, spill_rejections):
        spill, groups = spill_rejections
        survivor_of = dict(groups["rejected"])
        for record in read_spill(spill):
            survivor = survivor_of.get(record.id)
            if survivor is None:
                yield record
            else:
                reason = REASON_PREVIOUS if is_earlier(survivor[0]) else REASON
                yield Rejected.of(record, stage_names.NEAR_DEDUP, reason, detail_of(*survivor))


def at_threshold(edge_similarity, threshold: float) -> bool:
    """Whether an (edge, Jaccard) reaches the threshold."""
    return edge_similarity[1] >= threshold


def measured_or_not(edge_groups):
    """(edge, {"survivor": [None] for a survivor edge, "similar": [its Jaccard] for a checked pair}) → (survivor
    edge, Jaccard) where the check measured it (the survivor is a neighbour), else the edge as UNMEASURED."""
    edge, groups = edge_groups
    if not any(True for _ in groups["survivor"]):
        return
    for similarity in groups["similar"]:
        yield edge, similarity
        return
    yield beam.pvalue.TaggedOutput(UNMEASURED, edge)


def to_survivor(node_label):
    """(node, least node of its cluster) → (survivor node, node) for a file of this run that is not its survivor."""
    node, label = node_label
    if label != node and not is_earlier(node):
        yield label, node


def by_rejected_id(edge_similarity):
    """((survivor node, node), Jaccard) → (the node's file id, (survivor node, Jaccard))."""
    (survivor, node), similarity = edge_similarity
    return node[1], (survivor, similarity)


STATS = ("candidate-pairs", "similar-pairs", "label-rounds", "unsettled-pairs")  # each tallied at 0 too


def stat(name: str):
    """A count → the stage's tally of stat `name` (tallies are summed per stat)."""
    return lambda n: ((stage_names.NEAR_DEDUP, "stat", name), n)


def counted(name: str):
    """An element → a tally of 1 for stat `name`: counting is the tallies' sum, not a CombineGlobally of its own."""
    one = ((stage_names.NEAR_DEDUP, "stat", name), 1)
    return lambda _: one


class NearDedup(beam.PTransform):
    """RepoFiles → kept, rejected near-duplicates and tallies; writes the signatures into the version.

    `scratch_dir` holds the spill files and sorted runs (removed by the caller after the run);
    `version_dir` is where the signatures go. Its outputs' `files` hold the signatures,
    `manifest` the `near_dedup` entry, `extras[STUBS]` the kept files without content.
    """

    stage = stage_names.NEAR_DEDUP

    def __init__(
        self,
        config: NearDedupConfig,
        scratch_dir: str,
        version_dir: str,
        signature_shards: int = 1,
        previous_versions: tuple[str, ...] = (),
    ):
        super().__init__()
        self.config = config
        self.scratch_dir = scratch_dir
        self.version_dir = version_dir
        self.signature_shards = signature_shards
        self.previous_versions = previous_versions
        self.earlier_files = earlier_signature_files(previous_versions, config)

    def expand(self, files) -> StageOutputs:
        config = self.config
        pair_type = tuple[list[int], tuple[tuple[int, str], bytes]]  # (band keys, (node, sketch))
        sign = beam.ParDo(SignFilesFn(config, self.scratch_dir)).with_output_types(pair_type)
        signed = files | "SignFiles" >> sign.with_outputs(SIGNATURES, SPILLS, PLACES, FILE_STUBS, main="bands")
        places = signed[PLACES]
        bands = [signed.bands]
        if self.earlier_files:
            bands.append(self.read_earlier(files.pipeline, "ForBands") | "BandEarlier" >> beam.ParDo(BandEarlierFn(config)))
        edges = tuple(bands) | "BucketEdges" >> EdgesOfBands(self.scratch_dir) | "DistinctEdges" >> beam.Distinct()
        unused = () if config.check_jaccard else ("similar-pairs",)
        zeros = [stat(name)(0) for name in STATS if name not in unused]
        stats = [files.pipeline | "NoStatsYet" >> beam.Create(zeros, reshuffle=False)]
        stats.append(edges | "CountCandidates" >> beam.Map(counted("candidate-pairs")))
        if config.check_jaccard:
            similar = self.similarities(places, edges, "Candidate") | "AtThreshold" >> beam.Filter(at_threshold, config.threshold)
            edges = similar | "SimilarEdges" >> beam.Keys()
            stats.append(edges | "CountChecked" >> beam.Map(counted("similar-pairs")))
        clusters = ConnectedComponents(config.max_rounds)
        survivor_edges = edges | "Clusters" >> clusters | "ToSurvivor" >> beam.FlatMap(to_survivor)
        stats.append(clusters.rounds | "RoundsStat" >> beam.Map(stat("label-rounds")))
        stats.append(clusters.unsettled | "CountUnsettled" >> beam.Map(counted("unsettled-pairs")))
        if config.check_jaccard:  # most survivors are neighbours, whose Jaccard the check measured
            keyed = survivor_edges | "KeySurvivorEdges" >> beam.Map(lambda edge: (edge, None))
            joined = {"survivor": keyed, "similar": similar} | "SurvivorsAmongSimilar" >> beam.CoGroupByKey()
            split = joined | "MeasuredOrNot" >> beam.FlatMap(measured_or_not).with_outputs(UNMEASURED, main="measured")
            measured = (split.measured, self.similarities(places, split[UNMEASURED], "Survivor"))
            survivor_similarities = measured | "SurvivorSimilarities" >> beam.Flatten()
        else:
            survivor_similarities = self.similarities(places, survivor_edges, "Survivor")
        survivor_of = survivor_similarities | "ByRejectedId" >> beam.Map(by_rejected_id)
        routed = {
            "spill": signed[SPILLS] | "KeySpills" >> beam.Map(lambda spill: (spill, None)),
            "rejected": to_spills(places, survivor_of, "Rejections"),
        } | "RejectionsBySpill" >> beam.CoGroupByKey()
        dropped = routed | "DropNearDuplicates" >> ApplyStage(DropNearDuplicatesFn())
        return StageOutputs(
            kept=dropped.kept,
            rejected=dropped.rejected,
            tally=(dropped.tally, *stats) | "NearDedupTallies" >> beam.Flatten(),
            files=(self.write_signatures(signed[SIGNATURES]),),
            manifest={"near_dedup": files.pipeline | "NearDedupEntry" >> beam.Create([self.manifest_entry()])},
            extras={STUBS: kept_stubs(signed[FILE_STUBS], survivor_of)},
        )

    def read_earlier(self, pipeline, purpose: str):
        """(earlier node, signature) of every file of the earlier versions."""
        return (
            pipeline
            | f"EarlierSignatureFiles{purpose}" >> beam.Create(self.earlier_files)
            | f"ReadEarlierSignatures{purpose}" >> beam.FlatMap(read_earlier_signatures)
        )

    def similarities(self, places, edges, purpose: str):
        """Edges between files (of this run, or one of an earlier version) → (edge, Jaccard of its two files)."""
        ends = edges | f"{purpose}Ends" >> beam.FlatMap(lambda e: [(e[0][1], e), (e[1][1], e)])
        wanted = to_spills(places, ends, f"{purpose}Ends") | f"{purpose}EndsBySpill" >> beam.GroupByKey()
        values = [wanted | f"ShinglesOf{purpose}Ends" >> beam.ParDo(ShinglesOfCandidatesFn(self.config))]
        if self.earlier_files:
            edges_of, edge_ids = id_lookup.side_inputs(ends, purpose)
            earlier = self.read_earlier(edges.pipeline, f"For{purpose}")
            signatures_of = beam.ParDo(SignaturesOfCandidatesFn(), edges_of=edges_of, edge_ids=edge_ids)
            # A side-input consumer fused into a Flatten with another branch can leave Beam's local runner waiting
            # on itself: the earlier files' signatures (a KB each) settle first.
            settled = f"Settle{purpose}Signatures" >> beam.Reshuffle()
            values.append(earlier | f"SignaturesOf{purpose}Ends" >> signatures_of | settled)
        return tuple(values) | f"{purpose}Jaccard" >> EdgeSimilarities(self.scratch_dir)

    def write_signatures(self, signatures) -> beam.PCollection:
        """The signatures → dedup/minhash/*.parquet in the version; returns the written files' entries."""
        return signatures | "WriteSignatures" >> WriteParquetShards(
            self.version_dir, SIGNATURES_DIR, SIGNATURE_SCHEMA, self.signature_shards
        )

    def manifest_entry(self) -> dict:
        return {
            **dataclasses.asdict(self.config),
            "signatures": SIGNATURES_DIR,
            "signature_dtype": SIGNATURE_DTYPE,
            "previous_versions": [version_name(v) for v in self.previous_versions],
        }


def kept_stubs(stubs: beam.PCollection, survivor_of: beam.PCollection) -> beam.PCollection:
    """The files the stage keeps, without content: a join on ids of (id, file without content) with its
    decisions, which are known before the files are streamed back (so a statistic over them need not wait)."""
    joined = {"stub": stubs, "rejected": survivor_of}
    return (
        joined
        | "StubsAndRejections" >> beam.CoGroupByKey()
        | "NearDedupSurvivors" >> beam.FlatMap(lambda j: [] if list(j[1]["rejected"]) else j[1]["stub"])
    )
