"""The GitHub archive on BigQuery: Python and Jupyter files the API crawl did not get (§3.1).

`bigquery-public-data.github_repos` has `licenses` (repo_name, license key), `files`
(repo_name, ref, path, id) and `contents` (id, size, binary, content). The query in
sql/github_files.sql selects the .py and .ipynb files of repositories with an allowed
license, leaving out the repositories the GitHub crawl listed. It runs once; its result
is then read in parallel, in ranges of `rows_per_read` rows, each streamed page by page
through the client's row iterator (jobs.getQueryResults), so no worker holds more than
a page:

    Create ─ RunQuery ─ ReadRange per rows_per_read ─ SpreadRanges ─ ReadRows ─┬─ RepoFile (kept)
                                                                                ├─ Rejected, tallies
    kept ─ CountFilesPerRepo ─ RepoSnapshot (revision: the archive's ref) ─ SnapshotId

Files over read.max_file_bytes come back without content and are rejected as too-large;
binary files and symlinks are rejected by reason, like the other sources' files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import apache_beam as beam
from apache_beam import pvalue

from schemas.sources_config import BigQuerySource
from transforms.base import REJECTED, TALLY, Tally
from transforms.sources.archives import RepoInfo
from transforms.sources.common import CountFilesPerRepo, SourceOutputs, license_keys, spdx_of_key, with_snapshot_id
from transforms.sources.crawl_state import CrawlState
from transforms.sources.local import STAGE

SQL_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql", "github_files.sql")


def _bigquery():
    try:
        from google.cloud import bigquery
    except ImportError:
        raise ImportError("sources.bigquery needs google-cloud-bigquery: pip install 'code-corpus[gcp]'") from None
    return bigquery


def query_sql(dataset: str) -> str:
    with open(SQL_FILE, encoding="utf-8") as f:
        return f.read().replace("{dataset}", dataset)


def query_parameters(section: BigQuerySource, exclude_repos: list[str], max_file_bytes: int) -> list:
    bigquery = _bigquery()
    return [
        bigquery.ArrayQueryParameter("licenses", "STRING", license_keys(section.licenses, "sources.bigquery.licenses")),
        bigquery.ArrayQueryParameter("extensions", "STRING", [e.lower() for e in section.extensions]),
        bigquery.ArrayQueryParameter("exclude_repos", "STRING", sorted(exclude_repos)),
        bigquery.ScalarQueryParameter("max_file_bytes", "INT64", max_file_bytes),
    ]


def make_client(section: BigQuerySource):
    bigquery = _bigquery()
    kwargs = {}
    if section.api_endpoint:
        kwargs["client_options"] = {"api_endpoint": section.api_endpoint}
    if section.anonymous:
        from google.auth.credentials import AnonymousCredentials

        kwargs["credentials"] = AnonymousCredentials()
    return bigquery.Client(project=section.project, location=section.location, **kwargs)


def crawled_repos(state_dir: str | None) -> list[str]:
    """Lower-case names of the repositories a crawl listed (what the query leaves out)."""
    if state_dir is None:
        return []
    return [item["repo"].lower() for item in CrawlState(state_dir).read_listing() if item["kind"] == "RemoteRepo"]


def row_record(row, max_file_bytes: int):
    """One result row as a RepoFile, or a Rejected saying why not."""
    info = RepoInfo("bigquery", row["repo_name"], row["ref"], spdx_of_key(row["license"]), None, origin="github")
    path, size = row["path"], row["size"] or 0
    if row["is_symlink"]:
        return info.reject(path, "symlink", "not a regular file")
    if row["binary"]:
        return info.reject(path, "binary")
    if size > max_file_bytes:
        return info.reject(path, "too-large", f"{size} bytes > {max_file_bytes}")
    if row["content"] is None:
        return info.reject(path, "no-content", "the archive holds no content for this file")
    return info.file(path, row["content"].encode("utf-8"))


@dataclasses.dataclass(frozen=True)
class ReadRange:
    """Rows [start, start + count) of a finished query job's result."""

    project: str
    location: str | None
    job_id: str
    start: int
    count: int


class RunQueryFn(beam.DoFn):
    """Runs the query once; yields the ranges its result is read in, and row counts as tallies."""

    def __init__(self, section: BigQuerySource, exclude_state: str | None, max_file_bytes: int):
        self.section = section
        self.exclude_state = exclude_state
        self.max_file_bytes = max_file_bytes

    def setup(self):
        self.client = make_client(self.section)

    def process(self, _):
        bigquery = _bigquery()
        exclude = crawled_repos(self.exclude_state)
        config = bigquery.QueryJobConfig(
            query_parameters=query_parameters(self.section, exclude, self.max_file_bytes),
            maximum_bytes_billed=self.section.maximum_bytes_billed,
        )
        job = self.client.query(query_sql(self.section.dataset), job_config=config)
        total = job.result().total_rows or 0  # waits for the job; reads no rows
        for start in range(0, total, self.section.rows_per_read):
            yield ReadRange(job.project, job.location, job.job_id, start, min(self.section.rows_per_read, total - start))
        yield pvalue.TaggedOutput(TALLY, ((STAGE, "stat", "bigquery.rows"), total))
        yield pvalue.TaggedOutput(TALLY, ((STAGE, "stat", "bigquery.excluded_repositories"), len(exclude)))


class ReadRowsFn(beam.DoFn):
    """One range of the result, page by page → RepoFile (main), Rejected and tallies."""

    def __init__(self, section: BigQuerySource, max_file_bytes: int):
        self.section = section
        self.max_file_bytes = max_file_bytes

    def setup(self):
        self.client = make_client(self.section)
        self.tally = Tally(STAGE)

    def process(self, part: ReadRange):
        job = self.client.get_job(part.job_id, project=part.project, location=part.location)
        for row in job.result(start_index=part.start, max_results=part.count, page_size=self.section.page_size):
            self.tally.add_in()
            yield self.tally.route(row_record(row, self.max_file_bytes))

    def finish_bundle(self):
        yield from self.tally.drain()


class ReadBigQueryFiles(beam.PTransform):
    """The query's files as SourceOutputs (kept RepoFiles, Rejected, tallies, snapshots, summary)."""

    def __init__(self, section: BigQuerySource, exclude_state: str | None, max_file_bytes: int):
        super().__init__()
        license_keys(section.licenses, "sources.bigquery.licenses")  # fail before the run
        self.section = section
        self.exclude_state = exclude_state
        self.max_file_bytes = max_file_bytes

    def expand(self, pbegin):
        query = (
            pbegin
            | "Start" >> beam.Create([None])
            | "RunQuery"
            >> beam.ParDo(RunQueryFn(self.section, self.exclude_state, self.max_file_bytes)).with_outputs(TALLY, main="ranges")
        )
        read = (
            query.ranges
            | "SpreadRanges" >> beam.Reshuffle()
            | "ReadRows" >> beam.ParDo(ReadRowsFn(self.section, self.max_file_bytes)).with_outputs(REJECTED, TALLY, main="kept")
        )
        tally = (query[TALLY], read[TALLY]) | "AllTallies" >> beam.Flatten()
        snapshot = read.kept | "CountFilesPerRepo" >> CountFilesPerRepo()
        with open(SQL_FILE, "rb") as f:
            sql_sha256 = hashlib.sha256(f.read()).hexdigest()
        summary = {"dataset": self.section.dataset, "query": os.path.basename(SQL_FILE), "query_sha256": sql_sha256}
        return SourceOutputs(read.kept, read[REJECTED], tally, snapshot, with_snapshot_id(pbegin, summary, snapshot))

