"""Exact dedup stage: one copy of each token sequence, checked against earlier versions too.

The key of a file is (extension, number of alphanumeric tokens, MD5 of the token
sequence), as in the paper's footnote 6; an alphanumeric token is a maximal run of
letters, digits and underscores, so whitespace, punctuation and comment markers do
not tell copies apart. The graph groups by key, so it is exact at any scale:

    files ─ KeyFiles ─ key_to_files (GroupByKey) ─ ResolveDuplicates ─┬ kept: one file a key (most stars, then smallest id)
                                                                       ├ rejected: duplicate (detail: survivor id),
                                                                       │   dedup-previous-version
                                                                       └ keys ─ BloomCombineFn ─ dedup/bloom.bin

The files are shuffled once: ResolveDuplicates reads a key's group twice, first for
the survivor's rank, then to route each file (a GroupByKey's values can be re-read).

Every key that reaches the stage goes, once, into a pybloom-live BloomFilter: each
bundle fills its own filter and the CombineFn ORs them, which gives the same bits
whatever the bundling. The filter is written to `<version>/dedup/bloom.bin`, its
capacity and error rate to the manifest's `dedup` entry. A run that names earlier
versions (`dedup.previous_versions`) rejects files whose key is in one of their
filters as `dedup-previous-version`.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import string

import apache_beam as beam
from apache_beam import pvalue
from pybloom_live import BloomFilter

from infra import storage
from infra.writers import HashingFile, file_info
from schemas.config import ConfigError
from schemas.records import Rejected, RepoFile
from transforms.base import REJECTED, TALLY, Tally
from transforms.language import extension

STAGE = "dedup"
KEYS = "keys"
BLOOM_FILE = "dedup/bloom.bin"

_WORD = re.compile(r"\w+")
_ASCII_WORD = frozenset((string.ascii_letters + string.digits + "_").encode())
_ASCII_TO_SPACES = bytes(b if b in _ASCII_WORD else 0x20 for b in range(256))


def dedup_key(path: str, text: str) -> str:
    """`<extension>\\t<token count>\\t<md5 of the space-joined alphanumeric tokens>`."""
    if text.isascii():  # same tokens as the regex, split at C speed
        tokens = text.encode("ascii").translate(_ASCII_TO_SPACES).split()
        joined = b" ".join(tokens)
    else:
        tokens = _WORD.findall(text)
        joined = " ".join(tokens).encode("utf-8")
    return f"{extension(path)}\t{len(tokens)}\t{hashlib.md5(joined).hexdigest()}"


def survivor_rank(record: RepoFile) -> tuple[int, str]:
    """Smaller wins: most stars (unknown counts below 0), then smallest id."""
    return (-(record.stars if record.stars is not None else -1), record.id)


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


class ResolveDuplicatesFn(beam.DoFn):
    """One key's files → the survivor kept, the rest rejected; the key once to KEYS."""

    def __init__(self, previous_versions: tuple[str, ...]):
        self.previous_versions = previous_versions

    def setup(self):
        self.tally = Tally(STAGE)
        self.previous = [(v, read_bloom(bloom_path(v))) for v in self.previous_versions]

    def process(self, element):
        key, files = element
        yield pvalue.TaggedOutput(KEYS, key)
        seen_in = next((version for version, bloom in self.previous if key in bloom), None)
        winner = min(survivor_rank(record) for record in files)[1]
        for record in files:
            self.tally.add_in()
            if seen_in:
                out = Rejected.of(record, STAGE, "dedup-previous-version", f"key is in {version_label(seen_in)}")
            elif record.id == winner:
                out = record
            else:
                out = Rejected.of(record, STAGE, "duplicate", winner)
            yield self.tally.route(out)

    def finish_bundle(self):
        yield from self.tally.drain()


def write_bloom(serialized: tuple[bytes, int], version_dir: str) -> dict:
    path = bloom_path(version_dir)
    out = HashingFile(storage.create_file(path))
    out.write(serialized[0])
    out.close()
    return file_info(version_dir, path, out.sha256.hexdigest(), out.size)


class ExactDedup(beam.PTransform):
    """RepoFiles → kept survivors, rejected copies and tallies; writes the version's Bloom filter.

    `flow` is the CorpusFlow being built: the filter file and its manifest entry are
    registered on it, like any other output of the version.
    """

    stage = STAGE

    def __init__(self, flow, capacity: int, error_rate: float, previous_versions: tuple[str, ...] = ()):
        super().__init__()
        self.flow = flow
        self.capacity = capacity
        self.error_rate = error_rate
        self.previous_versions = previous_versions

    def expand(self, files):
        resolved = (
            files
            | "KeyFiles" >> beam.Map(lambda f: (dedup_key(f.path, f.content), f))
            | "GroupByKey" >> beam.GroupByKey()
            | "ResolveDuplicates" >> beam.ParDo(ResolveDuplicatesFn(self.previous_versions)).with_outputs(
                REJECTED, TALLY, KEYS, main="kept"
            )
        )
        bloom = resolved[KEYS] | "BuildBloomFilter" >> beam.CombineGlobally(BloomCombineFn(self.capacity, self.error_rate))
        version_dir = self.flow.out_dir
        self.flow.files_written.append(bloom | "WriteBloomFilter" >> beam.Map(write_bloom, version_dir))
        entry = {
            "bloom_file": BLOOM_FILE,
            "capacity": self.capacity,
            "error_rate": self.error_rate,
            "previous_versions": [version_label(v) for v in self.previous_versions],
        }
        self.flow.add_manifest_entry("dedup", bloom | "DescribeBloomFilter" >> beam.Map(lambda b: dict(entry, keys=b[1])))
        return resolved
