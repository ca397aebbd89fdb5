"""Near-dedup across versions: the signatures a version keeps, and earlier versions' signatures in this run.

Every version built with near-dedup holds the MinHash signature of each file that
reached the stage, in `dedup/minhash/part-*.parquet` (id, little-endian uint32 per
permutation). A run naming earlier versions (`dedup.previous_versions`) puts their
signatures in the LSH buckets beside its own files, as nodes that rank below every
file of the run, so a cluster holding one keeps the earlier file and rejects this
run's members as `near-duplicate-previous-version`. The earlier file's text is not
read: its pairs are checked on the signatures (the share of equal values estimates
the Jaccard similarity).
"""

from __future__ import annotations

import posixpath

import apache_beam as beam
import numpy as np
import pyarrow as pa

from infra import storage
from infra.version import MANIFEST
from infra.writers import read_json
from schemas.config import ConfigError, NearDedupConfig
from transforms.dedup.id_lookup import lookup
from transforms.dedup.minhash import MinHasher
from transforms.dedup.near_bands import sketch

SIGNATURES_DIR = "dedup/minhash"  # Parquet shards of (id, minhash) for every file that has shingles
SIGNATURE_SCHEMA = pa.schema([("id", pa.string()), ("minhash", pa.binary())])
SIGNATURE_DTYPE = "<u4"
SIGNATURE_SETTINGS = ("shingle_tokens", "permutations", "seed")  # signatures compare only when these agree
EARLIER = -(2**62)  # the rank of an earlier version's file: below any -stars, so it always survives
SHINGLES, MINHASH = "shingles", "minhash"  # what an edge's ends send to the check
BATCH_ROWS = 4096


def hasher_of(config: NearDedupConfig) -> MinHasher:
    return MinHasher(config.shingle_tokens, config.permutations, config.bands, config.rows, config.seed)


def is_earlier(node: tuple) -> bool:
    return node[0] == EARLIER


def earlier_node(file_id: str, name: str) -> tuple:
    """The node of an earlier version's file: its id string names the version too, so ids of two versions differ."""
    return EARLIER, f"{file_id} in {name}"


def earlier_parts(node: tuple) -> tuple[str, str]:
    """An earlier node → (file id, version name)."""
    file_id, name = node[1].split(" in ", 1)
    return file_id, name


def version_name(version_dir: str) -> str:
    """'<name>/<version>' of a version directory."""
    return "/".join(version_dir.rstrip("/").split("/")[-2:])


def earlier_signature_files(previous_versions: tuple[str, ...], config: NearDedupConfig) -> list[tuple[str, str]]:
    """(version name, Parquet path) of each earlier version's signature shards, checked now so a wrong one fails first."""
    files = []
    for i, version in enumerate(previous_versions):
        key = f"dedup.previous_versions[{i}]"
        try:
            manifest = read_json(posixpath.join(version, MANIFEST))
            entry = manifest["near_dedup"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{key}: {version!r} holds no near-dedup signatures (built without dedup.near); "
                "name versions built with dedup.near.enabled, or turn dedup.near off"
            ) from None
        different = [name for name in SIGNATURE_SETTINGS if entry.get(name) != getattr(config, name)]
        if different:
            settings = ", ".join(f"dedup.near.{name}={entry.get(name)!r}" for name in different)
            raise ConfigError(f"{key}: {version!r} was signed with {settings}; use the same settings to compare with it")
        prefix = entry["signatures"].rstrip("/") + "/"  # the shards the manifest lists, never a folder's listing
        listed = sorted(rel for rel in manifest.get("files", {}) if rel.startswith(prefix))
        files += [(version_name(version), posixpath.join(version, rel)) for rel in listed]
    return files


def read_earlier_signatures(name_and_path):
    """(version name, signature shard) → (earlier node, signature bytes) per row."""
    name, path = name_and_path
    for batch in storage.parquet_batches(path, ["id", "minhash"], BATCH_ROWS):
        for file_id, minhash in zip(batch.column("id").to_pylist(), batch.column("minhash").to_pylist()):
            yield earlier_node(file_id, name), minhash


class BandEarlierFn(beam.DoFn):
    """(earlier node, signature) → (its band keys, (node, sketch))."""

    def __init__(self, config: NearDedupConfig):
        self.config = config

    def setup(self):
        self.hasher = hasher_of(self.config)

    def process(self, node_signature):
        node, minhash = node_signature
        signature = np.frombuffer(minhash, dtype=SIGNATURE_DTYPE)
        yield self.hasher.band_keys(signature), (node, sketch(signature))


class SignaturesOfCandidatesFn(beam.DoFn):
    """(earlier node, signature) → (edge, its signature) for each candidate edge it is in."""

    def process(self, node_signature, edges_of, edge_ids):
        node, minhash = node_signature
        for edge in lookup(edges_of, edge_ids, node[1]):
            yield edge, (MINHASH, minhash)
