"""What every stage returns to the graph, and where the graph's counts and file list go.

Every stage, per-record (`transforms.base.ApplyStage`) or batched (dedup, near-dedup,
the StackOverflow join, binarize), returns one `StageOutputs`; the graph that applies it
collects the same fields of each. The summed tallies and the entries of the files
written go to two small JSON files beside the outputs (`write_counts_and_files`), which
the run reads back once the pipeline is done (`read_counts_and_files`).
"""

from __future__ import annotations

import posixpath
from typing import NamedTuple

import apache_beam as beam

from infra import storage
from infra.accounting import fold_tallies
from infra.writers import WriteSmallJson, read_json

COUNTS_FILE = "_counts.json"
FILES_FILE = "_files.json"
# The extra of a stage that decides on small keys before it streams its records: the records
# it keeps, without content, known before they are streamed (what a statistic over the kept
# records is computed from without holding them).
STUBS = "stubs"


class StageOutputs(NamedTuple):
    """A stage's outputs. Only `kept` goes on to the next stage; the rest is collected by the graph."""

    kept: beam.PCollection
    rejected: tuple[beam.PCollection, ...]  # one per step that rejects: not flattened, so the local runner need not hold them
    tally: beam.PCollection  # ((stage, kind, reason), n), summed into the manifest's counts
    files: tuple[beam.PCollection, ...] = ()  # entries of files the stage wrote into the version (infra.writers.file_info)
    manifest: dict[str, beam.PCollection] = {}  # manifest key → a one-element PCollection of its value
    extras: dict[str, beam.PCollection] = {}  # what later steps of the graph read (snapshots, STUBS, scores)


def write_counts_and_files(out_dir: str, tallies: list[beam.PCollection], files: list[beam.PCollection]) -> None:
    """Sum the tallies into COUNTS_FILE and gather the file entries into FILES_FILE, both in `out_dir`."""
    (
        tallies
        | "AllTallies" >> beam.Flatten()
        | "SumTallies" >> beam.CombinePerKey(sum)
        | "WriteCounts" >> WriteSmallJson(posixpath.join(out_dir, COUNTS_FILE))
    )
    (files | "AllFilesWritten" >> beam.Flatten() | "WriteFileList" >> WriteSmallJson(posixpath.join(out_dir, FILES_FILE)))


def read_counts_and_files(out_dir: str) -> tuple[dict, list[dict]]:
    """The counts per stage (as the manifest holds them) and the file entries the pipeline wrote; the two files go."""
    counts = fold_tallies(read_json(posixpath.join(out_dir, COUNTS_FILE)))
    files = read_json(posixpath.join(out_dir, FILES_FILE))
    storage.delete_files([posixpath.join(out_dir, name) for name in (COUNTS_FILE, FILES_FILE)])
    return counts, files


def by_path(files: list[dict]) -> dict:
    """File entries as the manifest's `files` holds them: keyed by path."""
    return {f["path"]: {k: v for k, v in f.items() if k != "path"} for f in files}
