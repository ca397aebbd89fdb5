"""The GitHub archive on BigQuery: Python and Jupyter files the API crawl did not get (§3.1).

`bigquery-public-data.github_repos` has `licenses` (repo_name, license key), `files`
(repo_name, ref, path, id) and `contents` (id, size, binary, content). The query in
sql/github_files.sql selects the .py and .ipynb files of repositories with an allowed
license, anti-joined with a loaded table of the repositories the GitHub crawl listed.
It runs once, under a deterministic job id and a bytes-billed cap, into a destination
table that expires; that table is read in parallel through the BigQuery Storage Read
API, one shard (`read_streams` of them) per task, each in its own read session, one
record batch in memory at a time (bigquery_jobs.py):

    Create ─ RunQuery (exclusions, dry run, query) ─ SpreadShards ─ ReadRows ─┬─ RepoFile (kept)
                                                                              ├─ Rejected, tallies
    kept ─ CountFilesPerRepo ─ RepoSnapshot (revision: the archive's ref) ─ SnapshotId

A dry run in the launcher, before any listing, says what the query would scan; a cap
below that fails the run before any work (`estimate_and_check`). The job dry-runs its
own SQL (with the exclusion table) again just before it runs.

Files over read.max_file_bytes (notebooks: read.max_notebook_bytes) come back without
content and are rejected as too-large;
binary files and symlinks are rejected by reason, like the other sources' files.
"""

from __future__ import annotations

import hashlib
import logging
import os

import apache_beam as beam
from apache_beam import pvalue

from schemas import stage_names
from schemas.sources_config import BigQuerySource
from transforms.base import ApplyStage, RecordFn
from transforms.sources.bigquery.jobs import (
    SQL_FILE,
    Staging,
    check_cap,
    dry_run,
    make_client,
    make_read_client,
    read_shard,
)
from transforms.sources.common import CountFilesPerRepo, SourceOutputs, license_keys, spdx_of_key, with_snapshot_id
from transforms.sources.crawl.archives import RepoInfo
from transforms.sources.crawl.state import CrawlState
from transforms.sources.file_decoding import size_limit

log = logging.getLogger(__name__)

SHARDS = "shards"


def crawled_repos(state_dir: str | None):
    """Lower-case names of the repositories a crawl listed (what the query leaves out), streamed."""
    if state_dir is None:
        return
    for item in CrawlState(state_dir).read_listing():
        if item["kind"] == "RemoteRepo":
            yield item["repo"].lower()


def row_record(row: dict, max_file_bytes: int, max_notebook_bytes: int | None = None):
    """One result row as a RepoFile, or a Rejected saying why not."""
    info = RepoInfo("bigquery", row["repo_name"], row["ref"], spdx_of_key(row["license"]), None, origin="github")
    path, size = row["path"], row["size"] or 0
    if row["is_symlink"]:
        return info.reject(path, "symlink", "not a regular file")
    if row["binary"]:
        return info.reject(path, "binary")
    if size > (limit := size_limit(path, max_file_bytes, max_notebook_bytes)):
        return info.reject(path, "too-large", f"{size} bytes > {limit}")
    if row["content"] is None:
        return info.reject(path, "no-content", "the archive holds no content for this file")
    return info.file(path, row["content"].encode("utf-8"))


def estimate_and_check(section: BigQuerySource, max_file_bytes: int, max_notebook_bytes: int | None = None):
    """The dry run's estimate, logged as a table; ConfigError when it is over the cap."""
    estimate = dry_run(make_client(section), section, max_file_bytes, max_notebook_bytes)
    log.info("sources.bigquery: dry run of the query\n%s", estimate.table())
    check_cap(estimate)
    return estimate


class RunQueryFn(RecordFn):
    """Loads the exclusions, runs the query into its table, and yields the table's read shards."""

    stage = stage_names.READ
    each_output_is_an_input = True  # it reads no records itself: only its statistics are tallied
    extra_outputs = (SHARDS,)

    def __init__(self, section: BigQuerySource, exclude_state: str | None, sizes: tuple[int, int | None]):
        self.section = section
        self.exclude_state = exclude_state
        self.sizes = sizes

    def setup(self):
        self.client = make_client(self.section)

    def __call__(self, _):
        staging = Staging(self.client, self.section)
        staging.ensure()
        exclude = None
        if self.exclude_state is not None:
            names = list(crawled_repos(self.exclude_state))
            self.count("bigquery.excluded_repositories", len(names))
            exclude = staging.load_exclusions(names) if names else None
        table_id, job, generation = staging.run_query(exclude, *self.sizes)
        self.count("bigquery.rows", self.client.get_table(table_id).num_rows or 0)
        self.count("bigquery.query_generation", generation)
        self.count("bigquery.bytes_billed", int(getattr(job, "total_bytes_billed", None) or 0))
        for shard in range(self.section.read_streams):
            yield pvalue.TaggedOutput(SHARDS, (table_id, self.client.project, shard))


class ReadRowsFn(RecordFn):
    """One shard of the result table, (table id, billing project, shard) → RepoFile (kept) or Rejected per row."""

    stage = stage_names.READ
    each_output_is_an_input = True

    def __init__(self, section: BigQuerySource, sizes: tuple[int, int | None]):
        self.section = section
        self.sizes = sizes

    def setup(self):
        self.read_client = make_read_client(self.section)

    def __call__(self, table_shard: tuple[str, str, int]):
        for row in read_shard(self.read_client, *table_shard):
            yield row_record(row, *self.sizes)


class ReadBigQueryFiles(beam.PTransform):
    """The query's files as SourceOutputs (kept RepoFiles, Rejected, tallies, snapshots, summary)."""

    def __init__(
        self, section: BigQuerySource, exclude_state: str | None, max_file_bytes: int, max_notebook_bytes: int | None = None
    ):
        super().__init__()
        license_keys(section.licenses, "sources.bigquery.licenses")  # fail before the run
        self.section = section
        self.exclude_state = exclude_state
        self.sizes = (max_file_bytes, max_notebook_bytes)

    def expand(self, pbegin):
        query = (
            pbegin
            | "Start" >> beam.Create([None])
            | "RunQuery" >> ApplyStage(RunQueryFn(self.section, self.exclude_state, self.sizes))
        )
        read = query[SHARDS] | "SpreadShards" >> beam.Reshuffle() | "ReadRows" >> ApplyStage(ReadRowsFn(self.section, self.sizes))
        tally = (query.tally, read.tally) | "AllTallies" >> beam.Flatten()
        snapshot = read.kept | "CountFilesPerRepo" >> CountFilesPerRepo()
        with open(SQL_FILE, "rb") as f:
            sql_sha256 = hashlib.sha256(f.read()).hexdigest()
        summary = {
            "dataset": self.section.dataset,
            "query": os.path.basename(SQL_FILE),
            "query_sha256": sql_sha256,
            "maximum_bytes_billed": self.section.maximum_bytes_billed,
        }
        return SourceOutputs(read.kept, read.rejected, tally, snapshot, with_snapshot_id(pbegin, summary, snapshot))
