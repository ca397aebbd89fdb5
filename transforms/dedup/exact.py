"""Exact dedup stage: one copy of each token sequence, checked against earlier versions too.

The key of a file (`transforms.dedup.exact_keys`) is (extension, number of alphanumeric
tokens, MD5 of the token sequence), as in the paper's footnote 6; an alphanumeric token
is a maximal run of letters, digits and underscores, so whitespace, punctuation and
comment markers do not tell copies apart. The graph groups by key, so it is exact at
any scale. It runs in two passes, like datatrove's signature / find / filter steps, so
that no file's content crosses a shuffle:

    files ─ SpillFiles ─┬─ files, whole ─ <scratch>/dedup-*.spill (one per bundle) ──────────────┐
                        └─ key_to_spilled (GroupByKey) ─ ResolveDuplicates                        │
                             (key → spill path, file without content)  │                          │
           ┌───────────────────────────────────────────────────────────┤                          │
           │ kept: one file a key (most stars, then smallest id)        ├ rejected: duplicate      │
           │                                                            │   (detail: survivor id), │
           │                                                            │   dedup-previous-version │
           │                                                            └ keys ─ BloomCombineFn ─ dedup/bloom.bin
           └─ spill_to_places (combined per key) ─ ReadKept ─ kept files, streamed from the spill files ┘

A survivor is named by its place in its spill file, not by its id, so one key keeps one
file even when two of its files share an id; the documents writer refuses equal ids that
reach it (`infra.writers`), which stops the run before its commit.

Every key that reaches the stage goes, once, into a pybloom-live BloomFilter: each
bundle fills its own filter and the CombineFn ORs them, which gives the same bits
whatever the bundling. The filter is written to `<version>/dedup/bloom.bin`, its
capacity and error rate to the manifest's `dedup` entry. A run that names earlier
versions (`dedup.previous_versions`) rejects files whose key is in one of their
filters as `dedup-previous-version`.
"""

from __future__ import annotations

import io
import posixpath
from typing import NamedTuple

import apache_beam as beam
from pybloom_live import BloomFilter

from infra import storage
from infra.runtime import configure_worker
from infra.spill import BundleSpill, read_spill
from infra.writers import HashingFile
from schemas import stage_names
from schemas.config import ConfigError
from schemas.records import Rejected, RepoFile
from transforms.base import ApplyStage
from transforms.dedup.exact_keys import dedup_key
from transforms.record_fn import Extra, RecordFn
from transforms.stage_outputs import STUBS, StageOutputs

KEYS = "keys"
BLOOM_FILE = "dedup/bloom.bin"


def survivor_rank(record: RepoFile) -> tuple[int, str]:
    """Smaller wins: most stars (unknown counts below 0), then smallest id."""
    return (-(record.stars if record.stars is not None else -1), record.id)


def copy_rank(record: RepoFile) -> tuple:
    """`survivor_rank`, then source, repo, path and size: copies that share an id are ordered the same in every run."""
    return (survivor_rank(record), record.source or "", record.repo or "", record.path or "", record.size)


def version_label(version_dir: str) -> str:
    """'<name>/<version>' of a version directory, as the manifest and rejects name it."""
    return "/".join(version_dir.rstrip("/").split("/")[-2:])


def bloom_path(version_dir: str) -> str:
    return posixpath.join(version_dir, BLOOM_FILE)


def read_bloom(path: str) -> BloomFilter:
    with storage.open_file(path) as f:
        return BloomFilter.fromfile(io.BytesIO(f.read()))


class BloomCombineFn(beam.CombineFn):
    """Keys → (serialized BloomFilter, number of keys); per-bundle filters are ORed."""

    def __init__(self, capacity: int, error_rate: float):
        self.capacity = capacity
        self.error_rate = error_rate

    def create_accumulator(self):
        return [BloomFilter(self.capacity, self.error_rate), 0]

    def add_input(self, acc, key):
        if acc[1] >= self.capacity:
            raise ConfigError(f"dedup.bloom_capacity: more than {self.capacity} distinct keys; raise it")
        acc[0].add(key, skip_check=True)
        acc[1] += 1
        return acc

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for bloom, count in accumulators:
            merged[0].bitarray |= bloom.bitarray
            merged[1] += count
        if merged[1] > self.capacity:
            raise ConfigError(f"dedup.bloom_capacity: {merged[1]} distinct keys > {self.capacity}; raise it")
        return merged

    def extract_output(self, acc):
        bloom, count = acc
        bloom.count = count
        out = io.BytesIO()
        bloom.tofile(out)
        return out.getvalue(), count


class SpilledFile(NamedTuple):
    """A file as the dedup rule sees it: its record without content, and where it is whole (spill file, place)."""

    spill: str
    index: int
    stub: RepoFile

    def shuffled(self) -> tuple:
        """As it crosses the shuffle: a plain tuple (see `RepoFile.fields`)."""
        return self.spill, self.index, self.stub.fields()

    @classmethod
    def unshuffled(cls, value: tuple) -> "SpilledFile":
        spill, index, stub = value
        return cls(spill, index, RepoFile.of_fields(stub))


class SpillFilesFn(beam.DoFn):
    """RepoFiles → (dedup key, SpilledFile); the files themselves go to one spill file per bundle."""

    def __init__(self, scratch_dir: str):
        self.scratch_dir = scratch_dir

    def setup(self):
        configure_worker()

    def start_bundle(self):
        self.spill = BundleSpill(self.scratch_dir, stage_names.DEDUP)

    def process(self, record: RepoFile):
        spill = self.spill.write(record.fields())
        index = self.spill.writer.count - 1
        yield dedup_key(record.path, record.content), SpilledFile(spill, index, record.replace(content="")).shuffled()

    def finish_bundle(self):
        self.spill.close()


class ResolveDuplicatesFn(RecordFn):
    """One key's files → the survivor kept, the rest rejected; the key once to KEYS."""

    stage = stage_names.DEDUP
    extra_outputs = (KEYS,)
    each_output_is_an_input = True

    def __init__(self, previous_versions: tuple[str, ...]):
        self.previous_versions = previous_versions

    def setup(self):
        self.previous = [(v, read_bloom(bloom_path(v))) for v in self.previous_versions]

    def __call__(self, element):
        key, shuffled = element
        yield Extra(KEYS, key)
        seen_in = next((version for version, bloom in self.previous if key in bloom), None)
        files = [SpilledFile.unshuffled(value) for value in shuffled]
        winner = min(range(len(files)), key=lambda i: copy_rank(files[i].stub))
        for i, spilled in enumerate(files):
            if seen_in:
                yield Rejected.of(
                    spilled.stub, stage_names.DEDUP, "dedup-previous-version", f"key is in {version_label(seen_in)}"
                )
            elif i == winner:
                yield spilled
            else:
                yield Rejected.of(spilled.stub, stage_names.DEDUP, "duplicate", files[winner].stub.id)


class ReadKeptFn(beam.DoFn):
    """(spill file, places of its survivors) → those files, streamed from the spill file."""

    def setup(self):
        configure_worker()

    def process(self, spill_places):
        spill, places = spill_places
        places = set(places)
        for index, fields in enumerate(read_spill(spill)):
            if index in places:
                yield RepoFile.of_fields(fields)


def write_bloom(serialized: tuple[bytes, int], version_dir: str) -> dict:
    path = bloom_path(version_dir)
    out = HashingFile(storage.create_file(path))
    out.write(serialized[0])
    out.close()
    return out.info(version_dir, path)


class ExactDedup(beam.PTransform):
    """RepoFiles → kept survivors, rejected copies and tallies; writes the version's Bloom filter.

    `scratch_dir` holds the spill files (removed by the caller after the run);
    `version_dir` is where dedup/bloom.bin goes. Its outputs' `files` hold dedup/bloom.bin,
    `manifest` the `dedup` entry, `extras[STUBS]` the survivors without content.
    """

    stage = stage_names.DEDUP

    def __init__(
        self, scratch_dir: str, version_dir: str, capacity: int, error_rate: float, previous_versions: tuple[str, ...] = ()
    ):
        super().__init__()
        self.scratch_dir = scratch_dir
        self.version_dir = version_dir
        self.capacity = capacity
        self.error_rate = error_rate
        self.previous_versions = previous_versions

    def expand(self, files) -> StageOutputs:
        resolved = (
            files
            | "SpillFiles" >> beam.ParDo(SpillFilesFn(self.scratch_dir))
            | "GroupByKey" >> beam.GroupByKey()
            | "ResolveDuplicates" >> ApplyStage(ResolveDuplicatesFn(self.previous_versions))
        )
        kept = (
            resolved.kept
            | "KeySpillToPlace" >> beam.Map(lambda spilled: (spilled.spill, spilled.index))
            | "GroupPlacesBySpill" >> beam.CombinePerKey(beam.combiners.ToListCombineFn())  # lists made before the shuffle
            | "ReadKept" >> beam.ParDo(ReadKeptFn())
        )
        bloom = resolved.extras[KEYS] | "BuildBloomFilter" >> beam.CombineGlobally(BloomCombineFn(self.capacity, self.error_rate))
        entry = {
            "bloom_file": BLOOM_FILE,
            "capacity": self.capacity,
            "error_rate": self.error_rate,
            "previous_versions": [version_label(v) for v in self.previous_versions],
        }
        return StageOutputs(
            kept=kept,
            rejected=resolved.rejected,
            tally=resolved.tally,
            files=(bloom | "WriteBloomFilter" >> beam.Map(write_bloom, self.version_dir),),
            manifest={"dedup": bloom | "DescribeBloomFilter" >> beam.Map(lambda b: dict(entry, keys=b[1]))},
            extras={STUBS: resolved.kept | "Survivors" >> beam.Map(lambda spilled: spilled.stub)},
        )
