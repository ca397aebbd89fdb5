"""The BigQuery source against a local endpoint answering jobs.insert / jobs.get / getQueryResults."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.sources_config import BigQuerySource
from tests.transforms.sources.network_fakes import FakeBigQuery, FakeFile
from transforms.sources.bigquery import ReadBigQueryFiles, query_sql
from transforms.sources.crawl_state import CrawlState
from transforms.sources.hosts import RemoteRepo, listing_line

FILES = [FakeFile("py/lib", f"pkg/m{i:02d}.py", f"VALUE = {i}\n") for i in range(23)] + [
    FakeFile("py/lib", "nb/demo.ipynb", '{"cells": []}'),
    FakeFile("py/lib", "README.md", "# not selected\n"),
    FakeFile("py/lib", "big.py", "x" * 5000),
    FakeFile("py/lib", "blob.py", None, binary=True, size=10),
    FakeFile("py/lib", "link.py", "pkg/m00.py", symlink=True),
    FakeFile("Crawled/Already", "a.py", "a = 1\n"),
    FakeFile("gpl/app", "g.py", "g = 1\n"),
]
LICENSES = {"py/lib": "mit", "Crawled/Already": "apache-2.0", "gpl/app": "gpl-3.0"}


@pytest.fixture
def bigquery():
    fake = FakeBigQuery(FILES, LICENSES)
    yield fake
    fake.close()


def crawl_listing(tmp_path) -> str:
    state = CrawlState(str(tmp_path / "github-crawl"))
    state.write_listing([listing_line(RemoteRepo("github", "crawled/already", "crawled/already", "main", 1, "MIT"))])
    return state.path


@pytest.mark.slow
def test_query_streams_pages_in_parallel_ranges(bigquery, tmp_path):
    section = BigQuerySource(project="test-project", api_endpoint=bigquery.url, anonymous=True, rows_per_read=10, page_size=4)
    with TestPipeline() as p:
        out = p | ReadBigQueryFiles(section, crawl_listing(tmp_path), max_file_bytes=1000)
        assert_that(out.kept | "Paths" >> beam.Map(lambda f: f.path),
                    equal_to([f"pkg/m{i:02d}.py" for i in range(23)] + ["nb/demo.ipynb"]), label="Kept")
        assert_that(out.rejected | "Reasons" >> beam.Map(lambda r: (r.path, r.reason)),
                    equal_to([("big.py", "too-large"), ("blob.py", "binary"), ("link.py", "symlink")]), label="Rejected")
        assert_that(out.snapshot | "Snap" >> beam.Map(lambda s: (s.source, s.repo, s.revision, s.license, s.files)),
                    equal_to([("bigquery", "py/lib", "refs/heads/master", "MIT", 24)]), label="Snapshot")
        assert_that(out.summary | "Keys" >> beam.Map(lambda s: sorted(s)),
                    equal_to([["dataset", "query", "query_sha256", "snapshot_id"]]), label="Summary")

    ((sql, params),) = bigquery.queries
    assert sql == query_sql("bigquery-public-data.github_repos") and "UNNEST(@exclude_repos)" in sql
    assert params["licenses"] == ["mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause"]
    assert params["extensions"] == [".py", ".ipynb"] and params["exclude_repos"] == ["crawled/already"]
    assert params["max_file_bytes"] == "1000"
    (job_id,) = bigquery.pages
    assert bigquery.pages[job_id] == 3 + 3 + 2  # 27 rows in ranges of 10, 10 and 7, pages of at most 4 rows


@pytest.mark.slow
def test_records_match_the_other_sources(bigquery, tmp_path):
    section = BigQuerySource(project="test-project", api_endpoint=bigquery.url, anonymous=True, exclude_crawled=False)
    with TestPipeline() as p:
        out = p | ReadBigQueryFiles(section, None, max_file_bytes=1000)
        kept = out.kept | beam.Filter(lambda f: f.path == "a.py")
        assert_that(kept | beam.Map(lambda f: (f.source, f.origin, f.repo, f.license, f.stars, f.content)),
                    equal_to([("bigquery", "github", "Crawled/Already", "Apache-2.0", None, "a = 1\n")]))
