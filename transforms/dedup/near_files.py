"""Near-dedup's pass over the files: sign them, spill them, and stream them back to the check.

The stage reads its input once (transforms/dedup/near.py has the whole graph). Each
bundle's files go to one spill file in the run's scratch directory, and every later
step that needs a file's text finds it there: the decisions it needs come as
(spill file, [(id, value)]) by a join on ids with each file's place (its spill path).
"""

from __future__ import annotations

import collections
import dataclasses

import apache_beam as beam
from apache_beam import pvalue

from infra.runtime import configure_worker
from infra.spill import BundleSpill, read_spill
from schemas.config import NearDedupConfig
from transforms.base import in_global_window
from transforms.dedup.exact import survivor_rank
from transforms.dedup.near_bands import sketch
from transforms.dedup.near_versions import MINHASH, SHINGLES, SIGNATURE_DTYPE, hasher_of, is_earlier

SPILL_PREFIX = "near-dedup"
SIGNATURES = "signatures"  # FileSignature of every file with shingles
SPILLS = "spills"  # the path of each bundle's spill file
PLACES = "places"  # (file id, its spill path)
FILE_STUBS = "file-stubs"  # (file id, the file without content)


@dataclasses.dataclass(frozen=True)
class FileSignature:
    """A file's MinHash signature (little-endian uint32 per permutation), as written to the version."""

    id: str
    minhash: bytes

    def to_row(self) -> dict:
        return {"id": self.id, "minhash": self.minhash}


class SignFilesFn(beam.DoFn):
    """A file → (its band keys, (node, sketch)) and its signature to SIGNATURES (files too short for a shingle:
    neither). Every file goes to this bundle's spill file: (id, spill path) to PLACES, and the path to
    SPILLS once the bundle ends; (id, the file without content) to FILE_STUBS."""

    def __init__(self, config: NearDedupConfig, scratch_dir: str):
        self.config = config
        self.scratch_dir = scratch_dir

    def setup(self):
        self.hasher = hasher_of(self.config)
        configure_worker()

    def start_bundle(self):
        self.spill = BundleSpill(self.scratch_dir, SPILL_PREFIX)

    def process(self, record):
        yield pvalue.TaggedOutput(PLACES, (record.id, self.spill.write(record)))
        yield pvalue.TaggedOutput(FILE_STUBS, (record.id, record.replace(content="")))
        shingles = self.hasher.shingles(record.content)
        if not len(shingles):
            return
        signature = self.hasher.signature(shingles)
        yield pvalue.TaggedOutput(SIGNATURES, FileSignature(record.id, signature.astype(SIGNATURE_DTYPE).tobytes()))
        yield self.hasher.band_keys(signature), (survivor_rank(record), sketch(signature))

    def finish_bundle(self):
        path = self.spill.close()
        if path is not None:
            yield in_global_window(pvalue.TaggedOutput(SPILLS, path))


class ShinglesOfCandidatesFn(beam.DoFn):
    """(spill file, [(id, candidate edge)]) → (edge, what the check compares) for each edge of those files.

    Against a file of an earlier version (whose text is not read) that is the signature,
    otherwise the shingle hashes.
    """

    def __init__(self, config: NearDedupConfig):
        self.config = config

    def setup(self):
        self.hasher = hasher_of(self.config)
        configure_worker()

    def process(self, spill_ends):
        spill, ends = spill_ends
        edges_of = collections.defaultdict(list)
        for file_id, edge in ends:
            edges_of[file_id].append(edge)
        for record in read_spill(spill):
            if record.id in edges_of:
                shingles = self.hasher.shingles(record.content)
                signature = None  # against earlier versions only, computed once
                for edge in edges_of[record.id]:
                    if is_earlier(edge[0]):
                        if signature is None:
                            signature = self.hasher.signature(shingles).astype(SIGNATURE_DTYPE).tobytes()
                        yield edge, (MINHASH, signature)
                    else:
                        yield edge, (SHINGLES, shingles.tobytes())


def at_spill(joined):
    """(id, {"place": [spill], "value": [values]}) → (spill, (id, value)) for each value."""
    file_id, groups = joined
    values = list(groups["value"])
    for spill in groups["place"]:
        for value in values:
            yield spill, (file_id, value)


def to_spills(places, keyed, label: str):
    """(id, value) pairs → (spill file of that id's file, (id, value)): a join on ids (ids of no file of this run: nothing)."""
    return {"place": places, "value": keyed} | f"{label}ById" >> beam.CoGroupByKey() | f"{label}ToSpill" >> beam.FlatMap(at_spill)
