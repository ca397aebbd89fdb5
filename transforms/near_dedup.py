"""Near-dedup stage: one file per cluster of near-duplicates, by MinHash LSH (beyond the paper).

The paper removes exact copies only; every current code corpus (The Stack, StarCoder,
datatrove, NeMo Curator) also removes near-copies: forks with a changed line, vendored
copies, generated variants. The graph decides on small values and then filters the
files streamed back from spill files, so it is exact at any scale and reads `files` once
(as exact dedup's two passes do; the local runner would otherwise hold the corpus for
each later step that reads it while the clusters are decided):

    files ─ SignFiles ─┬ files, whole ─ <scratch>/near-dedup-*.spill (one per bundle): spill paths,
                       │                 and places (file id, its spill path)
                       ├ (band key, node) ─────────────────────┐
                       └ signatures ─ dedup/minhash/*.parquet   ├ sorted runs ─ StarEdges ─ Distinct ─ candidate edges
    earlier versions' dedup/minhash/ ─ (band key, earlier node) ┘   (near_dedup_bands.py; near_dedup_versions.py)
    candidate edges ─ [CheckJaccard: edge ends joined with places (CoGroupByKey on ids),
                       grouped by spill file; each spill file streamed, its candidate files
                       send their shingles to their edges: sorted runs by edge, merged per
                       partition (near_dedup_check.py)] ─ edges
    edges ─ adjacency (GroupByKey) ─ max_rounds x (send labels, GroupByKey, keep the least)
          ─ (id, survivor node) of every node whose label is not its own, joined with places
    (spill path, its rejected ids) ─ DropNearDuplicates (each spill file streamed) ─┬ kept
                                                     └ rejected: near-duplicate (detail: survivor id),
                                                         near-duplicate-previous-version

A node is a file's `survivor_rank` (most stars, then smallest id), as exact dedup
chooses survivors, so the least label of a connected component is its survivor.
Files in one LSH band bucket are linked as a star around the bucket's least node,
which keeps the component and never lists all pairs of a big bucket. Labels spread
one hop per round: a file further than `max_rounds` hops from its cluster's survivor
names a nearer member instead (itself rejected), and a cluster may keep more than one
file. The `labels-changed-in-last-round` stat is 0 when every label had settled.

The (band key, node) pairs cross no shuffle: they are sorted into runs on scratch
storage and merged per partition of band keys (transforms/near_dedup_bands.py), so
the runner never holds them. What crosses the shuffles is ids, star counts, run and
spill paths; the check's shingle hashes go to sorted runs the same way
(transforms/near_dedup_check.py). Contents travel once; the spill files and runs are scratch (`flow.scratch_dir`,
removed by the run). Decisions reach the files by joins on ids, not side-input lookups:
the local runner weighs every looked-up value by walking all loaded modules
(milliseconds each). Only earlier versions'
signatures, which are not in spill files, are matched by a lookup (transforms/id_lookup.py).
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from infra.spill import read_spill, return_freed_memory
from infra.writers import WriteParquetShards
from schemas.config import NearDedupConfig
from schemas.records import Rejected
from transforms import id_lookup
from transforms.base import ApplyStage, RecordFn
from transforms.near_dedup_bands import StarEdgesOfBands
from transforms.near_dedup_check import SimilarEdges
from transforms.near_dedup_files import PLACES, SIGNATURES, SPILLS, ShinglesOfCandidatesFn, SignFilesFn, to_spills
from transforms.near_dedup_versions import (
    SIGNATURE_DTYPE,
    SIGNATURE_SCHEMA,
    SIGNATURES_DIR,
    BandEarlierFn,
    SignaturesOfCandidatesFn,
    earlier_signature_files,
    is_earlier,
    read_earlier_signatures,
    version_name,
)

STAGE = "near-dedup"
REASON = "near-duplicate"
REASON_PREVIOUS = "near-duplicate-previous-version"


def send_labels(state):
    """(node, (label, neighbours, _)) → itself, and its label to each neighbour."""
    node, (label, neighbours, _) = state
    yield node, (label, neighbours)
    for other in neighbours:
        yield other, (label, None)


def keep_least_label(messages):
    """(node, [(label, neighbours or None)]) → (node, (least label, neighbours, whether it changed))."""
    node, received = messages
    own_label, neighbours = next(m for m in received if m[1] is not None)
    least = min(m[0] for m in received)
    return node, (least, neighbours, least != own_label)


class DropNearDuplicatesFn(RecordFn):
    """(spill file, {"rejected": [(id, survivor node)]}) → each file of the spill, kept unless it is named
    there (its cluster's survivor is another file, or a file of an earlier version)."""

    stage = STAGE
    each_output_is_an_input = True

    def setup(self):
        return_freed_memory()

    def __call__(self, spill_rejections):
        spill, groups = spill_rejections
        survivor_of = dict(groups["rejected"])
        for record in read_spill(spill):
            survivor = survivor_of.get(record.id)
            if survivor is None:
                yield record
            elif is_earlier(survivor):
                yield Rejected.of(record, STAGE, REASON_PREVIOUS, survivor[1])
            else:
                yield Rejected.of(record, STAGE, REASON, survivor[1])


def near_duplicates(state):
    """(node, (label, ...)) → (file id, survivor node) for a file of this run whose label is another node."""
    node, (label, *_) = state
    if label != node and not is_earlier(node):
        yield node[1], label


def stat(name: str):
    """A count → the stage's tally of stat `name`."""
    return lambda n: ((STAGE, "stat", name), n)


class NearDedup(beam.PTransform):
    """RepoFiles → kept, rejected near-duplicates and tallies; writes the signatures into the version.

    `flow` is the CorpusFlow being built (extra tallies, files written, manifest entry).
    """

    stage = STAGE

    def __init__(self, flow, config: NearDedupConfig, signature_shards: int = 1, previous_versions: tuple[str, ...] = ()):
        super().__init__()
        self.flow = flow
        self.config = config
        self.signature_shards = signature_shards
        self.previous_versions = previous_versions
        self.earlier_files = earlier_signature_files(previous_versions, config)

    def expand(self, files):
        config, flow = self.config, self.flow
        sign = beam.ParDo(SignFilesFn(config, flow.scratch_dir)).with_output_types(tuple[int, tuple[int, str]])
        signed = files | "SignFiles" >> sign.with_outputs(SIGNATURES, SPILLS, PLACES, main="bands")
        places = signed[PLACES]
        bands = [signed.bands]
        if self.earlier_files:
            bands.append(self.read_earlier(files.pipeline, "ForBands") | "BandEarlier" >> beam.ParDo(BandEarlierFn(config)))
        edges = tuple(bands) | "StarEdges" >> StarEdgesOfBands(flow.scratch_dir) | "DistinctEdges" >> beam.Distinct()
        stats = [
            edges | "CountCandidates" >> beam.combiners.Count.Globally() | "CandidateStat" >> beam.Map(stat("candidate-pairs"))
        ]
        if config.check_jaccard:
            edges = self.check_jaccard(places, edges)
            stats.append(
                edges | "CountChecked" >> beam.combiners.Count.Globally() | "CheckedStat" >> beam.Map(stat("similar-pairs"))
            )
        self.edges = edges  # the pairs judged near-duplicates, for measuring (bench/bench_near_dedup.py)
        labels, changed = self.propagate_labels(edges)
        stats.append(changed | "LastRoundStat" >> beam.Map(stat("labels-changed-in-last-round")))
        survivor_of = labels | "NearDuplicates" >> beam.FlatMap(near_duplicates)
        flow.tallies.append(stats | "AllNearDedupStats" >> beam.Flatten())
        self.write_signatures(signed[SIGNATURES])
        self.survivor_of = survivor_of
        routed = {
            "spill": signed[SPILLS] | "KeySpills" >> beam.Map(lambda spill: (spill, None)),
            "rejected": to_spills(places, survivor_of, "Rejections"),
        } | "RejectionsBySpill" >> beam.CoGroupByKey()
        return routed | "DropNearDuplicates" >> ApplyStage(DropNearDuplicatesFn())

    def keep_survivors(self, stubs: beam.PCollection) -> beam.PCollection:
        """The files of `stubs` (any records with an id, e.g. dedup's content-free survivors) this
        stage kept: a join on ids with its decisions (only after the stage was applied)."""
        joined = {"stub": stubs | "KeyStubs" >> beam.Map(lambda stub: (stub.id, stub)), "rejected": self.survivor_of}
        return (
            joined
            | "StubsAndRejections" >> beam.CoGroupByKey()
            | "NearDedupSurvivors" >> beam.FlatMap(lambda j: [] if list(j[1]["rejected"]) else j[1]["stub"])
        )

    def read_earlier(self, pipeline, purpose: str):
        """(earlier node, signature) of every file of the earlier versions."""
        return (
            pipeline
            | f"EarlierSignatureFiles{purpose}" >> beam.Create(self.earlier_files)
            | f"ReadEarlierSignatures{purpose}" >> beam.FlatMap(read_earlier_signatures)
        )

    def check_jaccard(self, places, edges):
        """Candidate edges → those whose two files reach the Jaccard threshold."""
        ends = edges | "EdgeEnds" >> beam.FlatMap(lambda e: [(e[0][1], e), (e[1][1], e)])
        wanted = to_spills(places, ends, "CandidateEnds") | "CandidatesBySpill" >> beam.GroupByKey()
        values = [wanted | "ShinglesOfCandidates" >> beam.ParDo(ShinglesOfCandidatesFn(self.config))]
        if self.earlier_files:
            edges_of, edge_ids = id_lookup.side_inputs(ends, "Candidate")
            earlier = self.read_earlier(edges.pipeline, "ForCheck")
            signatures_of = beam.ParDo(SignaturesOfCandidatesFn(), edges_of=edges_of, edge_ids=edge_ids)
            # A side-input consumer fused into a Flatten with another branch can leave Beam's local runner waiting
            # on itself: the earlier files' signatures (a KB each) settle first.
            values.append(earlier | "SignaturesOfCandidates" >> signatures_of | "SettleSignatures" >> beam.Reshuffle())
        return tuple(values) | "CheckJaccard" >> SimilarEdges(self.flow.scratch_dir, self.config.threshold)

    def propagate_labels(self, edges):
        """Edges → (node, (least node of its component, neighbours)), and how many labels the last round changed."""
        state = (
            edges
            | "BothDirections" >> beam.FlatMap(lambda e: [e, (e[1], e[0])])
            | "Adjacency" >> beam.GroupByKey()
            | "FirstLabels" >> beam.Map(lambda a: (a[0], (min(a[0], *a[1]), sorted(a[1]), True)))
        )
        for i in range(self.config.max_rounds):
            state = (
                state
                | f"SendLabels{i}" >> beam.FlatMap(send_labels)
                | f"GatherLabels{i}" >> beam.GroupByKey()
                | f"KeepLeastLabel{i}" >> beam.Map(keep_least_label)
            )
        changed = state | "ChangedInLastRound" >> beam.Map(lambda s: int(s[1][2])) | "SumChanged" >> beam.CombineGlobally(sum)
        return state, changed

    def write_signatures(self, signatures):
        flow = self.flow
        written = signatures | "WriteSignatures" >> WriteParquetShards(
            flow.out_dir, SIGNATURES_DIR, SIGNATURE_SCHEMA, self.signature_shards
        )
        flow.files_written.append(written)
        entry = {
            **dataclasses.asdict(self.config),
            "signatures": SIGNATURES_DIR,
            "signature_dtype": SIGNATURE_DTYPE,
            "previous_versions": [version_name(v) for v in self.previous_versions],
        }
        flow.add_manifest_entry("near_dedup", flow.pipeline | "NearDedupEntry" >> beam.Create([entry]))


def near_dedup_stages(flow) -> list[beam.PTransform]:
    """The near-dedup stage as configured under `dedup.near`: none when it is off (the paper's corpus)."""
    config = flow.config
    if not config.dedup.near.enabled:
        return []
    previous = tuple(config.resolve(v) for v in config.dedup.previous_versions)
    return [NearDedup(flow, config.dedup.near, config.output.document_shards, previous)]
