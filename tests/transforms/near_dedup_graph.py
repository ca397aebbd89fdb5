"""A NearDedup graph built once per process, for the tests that only walk it (its construction costs seconds)."""

from __future__ import annotations

import functools
import json
import pathlib
import tempfile

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from infra.version import MANIFEST
from schemas.config import NearDedupConfig
from schemas.records import RepoFile
from tests.conftest import local_pipeline
from transforms.dedup.near import NearDedup
from transforms.dedup.near_versions import SIGNATURE_SCHEMA, SIGNATURES_DIR

CONFIG = NearDedupConfig(enabled=True)


def earlier_version(root) -> str:
    """A version directory holding near-dedup signatures, as a later run names it in dedup.previous_versions."""
    version = root / "one" / "v"
    (version / SIGNATURES_DIR).mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([{"id": "e", "minhash": bytes(4 * CONFIG.permutations)}], SIGNATURE_SCHEMA),
        version / SIGNATURES_DIR / "part-00000-of-00001.parquet",
    )
    entry = {"shingle_tokens": 5, "permutations": 256, "seed": 42, "signatures": SIGNATURES_DIR}
    listed = {f"{SIGNATURES_DIR}/part-00000-of-00001.parquet": {}}  # later runs read the shards the manifest lists
    (version / MANIFEST).write_text(json.dumps({"near_dedup": entry, "files": listed}))
    return str(version)


@functools.cache
def near_dedup_graph() -> tuple[beam.Pipeline, beam.PCollection]:
    """A pipeline that applies NearDedup, labelled "Near", to one file, with an earlier version, and that input:
    built once per process, for the tests that only walk its graph (it is never run, so its folders may go)."""
    p = local_pipeline()
    content = "\n".join(f"value_{i} = compute_{i}(arg_{i})" for i in range(20))
    files = p | beam.Create([RepoFile("a", "local", "o/a", "m.py", None, "MIT", 1, len(content), content)])
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        files | "Near" >> NearDedup(CONFIG, str(root / "scratch"), str(root / "v"), previous_versions=(earlier_version(root),))
    return p, files
