"""The BigQuery source, through google-cloud-bigquery and google-cloud-bigquery-storage, against a local BigQuery."""

from __future__ import annotations

import collections
from json.encoder import encode_basestring_ascii

import apache_beam as beam
import pytest
import yaml
from apache_beam.testing.util import assert_that, equal_to

from infra import storage
from schemas.errors import ConfigError
from schemas.records import RepoFile
from schemas.sources_config import DEFAULT_MAXIMUM_BYTES_BILLED, BigQuerySource
from tests.conftest import local_pipeline, run_cli
from tests.transforms.sources.bigquery_fakes import FakeBigQuery, FakeFile
from transforms.sources.bigquery.jobs import Staging, make_client, query_sql, session_rows
from transforms.sources.bigquery.source import ReadBigQueryFiles, ReadRowsFn, RunQueryFn, estimate_and_check
from transforms.sources.crawl.hosts import RemoteRepo, listing_line
from transforms.sources.crawl.state import CrawlState, encode_sorted
from transforms.sources.local.source import SNAPSHOT

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
KEPT = [f"pkg/m{i:02d}.py" for i in range(23)] + ["nb/demo.ipynb"]


@pytest.fixture
def bigquery():
    fakes = []

    def make(files=FILES, licenses=LICENSES):
        fake = FakeBigQuery(files, licenses)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.close()


def section_for(fake: FakeBigQuery, **settings) -> BigQuerySource:
    return BigQuerySource(
        project="test-project", api_endpoint=fake.url, storage_api_endpoint=fake.storage_endpoint, anonymous=True, **settings
    )


def crawl_listing(tmp_path, names=("crawled/already",)) -> str:
    """A crawl state whose listing names `names`, each line the bytes the crawl writes (one line's JSON with
    the name put in: a million dicts through the encoder would cost this test seconds)."""
    state = CrawlState(str(tmp_path / "github-crawl"))
    line = encode_sorted({**listing_line(RemoteRepo("github", "", "", "main", 1, "MIT")), "repo": "\0", "api_id": "\0"})
    head, middle, tail = line.split(encode_basestring_ascii("\0"))
    quoted = map(encode_basestring_ascii, names)
    with storage.create_file(state.listing_path, compress=True) as f:
        f.write("".join(f"{head}{q}{middle}{q}{tail}\n" for q in quoted).encode())
    return state.path


@pytest.mark.slow
def test_query_into_a_destination_table_read_in_parallel_streams(bigquery, tmp_path):
    fake = bigquery()
    section = section_for(fake, read_streams=3, maximum_bytes_billed=10**6)
    # On a worker process of its own (one: each costs an interpreter's start), which proves the composite pickles.
    with local_pipeline("--direct_running_mode=multi_processing", "--direct_num_workers=1") as p:
        out = p | ReadBigQueryFiles(section, crawl_listing(tmp_path), max_file_bytes=1000, max_notebook_bytes=5000)
        assert_that(out.kept | "Paths" >> beam.Map(lambda f: f.path), equal_to(KEPT), label="Kept")
        assert_that(
            out.rejected | "AllRejected" >> beam.Flatten() | "Reasons" >> beam.Map(lambda r: (r.path, r.reason)),
            equal_to([("big.py", "too-large"), ("blob.py", "binary"), ("link.py", "symlink")]),
            label="Rejected",
        )
        assert_that(
            out.extras[SNAPSHOT] | "Snap" >> beam.Map(lambda s: (s.source, s.repo, s.revision, s.license, s.files)),
            equal_to([("bigquery", "py/lib", "refs/heads/master", "MIT", 24)]),
            label="Snapshot",
        )
        assert_that(
            out.manifest["source_bigquery"] | "Cap" >> beam.Map(lambda s: (sorted(s), s["maximum_bytes_billed"])),
            equal_to([(["dataset", "maximum_bytes_billed", "query", "query_sha256", "snapshot_id"], 10**6)]),
            label="Summary",
        )

    ((sql, params),) = fake.queries
    (exclude_table,) = [t for t in fake.tables if ".exclude_" in t]
    assert sql == query_sql("bigquery-public-data.github_repos", f"`{exclude_table}`")
    assert exclude_table.startswith("test-project.code_corpus_staging.")
    assert params == {
        "licenses": ["mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause"],
        "extensions": [".py", ".ipynb"],
        "max_file_bytes": "1000",
        "max_notebook_bytes": "5000",
        "read_shards": "3",
    }
    (query_job,) = [j for j in fake.jobs.values() if "query" in j["configuration"]]
    config = query_job["configuration"]["query"]
    assert config["maximumBytesBilled"] == str(10**6) and config["destinationTable"]["tableId"].startswith("files_")
    assert query_job["jobReference"]["jobId"].startswith("code_corpus_files_")
    assert set(fake.expiry) == {exclude_table, ".".join(config["destinationTable"].values())}  # both tables expire
    assert fake.datasets["test-project.code_corpus_staging"]["defaultTableExpirationMs"] == str(24 * 3_600_000)
    # One session per shard, each restricted to its rows: 27 rows, 4 per batch.
    (table,) = [rows for name, rows in fake.tables.items() if ".files_" in name]
    sizes = collections.Counter(row["shard"] for row in table)
    assert fake.sessions == 3 and sorted(sizes) == [0, 1, 2] and sum(sizes.values()) == 27
    assert sum(fake.batches.values()) == sum(-(-n // 4) for n in sizes.values())


def test_records_match_the_other_sources(bigquery):
    section = section_for(bigquery(), exclude_crawled=False)
    (a,) = [r for r in records_of_the_stage(section, None) if r.path == "a.py"]
    assert (a.source, a.origin, a.repo, a.license, a.stars, a.content) == (
        "bigquery",
        "github",
        "Crawled/Already",
        "Apache-2.0",
        None,
        "a = 1\n",
    )


def test_a_retry_finds_the_job_it_already_ran(bigquery, tmp_path):
    fake = bigquery()
    section = section_for(fake)
    listing = crawl_listing(tmp_path)
    for _ in range(2):  # the second run asks for the same job ids and gets 409: nothing runs or bills again
        kept_paths(section, listing)
    assert len(fake.queries) == 1
    assert sorted(fake.inserts.values()) == [2, 2]  # the exclusion load and the query, asked twice each

    # Once its table has expired, a rerun runs the query again under the next id.
    for table in [t for t in fake.tables if ".files_" in t]:
        del fake.tables[table]
    client = make_client(section)
    staging = Staging(client, section)
    (exclude_table,) = [t for t in fake.tables if ".exclude_" in t]
    table, _, generation = staging.run_query(exclude_table, 1000)
    assert len(fake.queries) == 2 and table in fake.tables and generation == 2
    assert [j for j in fake.inserts if j.endswith("_2")] == [next(j for j in fake.inserts if "files" in j) + "_2"]


@pytest.mark.slow
def test_an_exclusion_list_of_a_million_names_is_loaded_and_anti_joined(bigquery, tmp_path):
    names = [f"owner{i % 9973}/repo-{i:07d}" for i in range(999_999)] + ["crawled/already"]
    fake = bigquery()
    section = section_for(fake)
    kept = [r.repo for r in records_of_the_stage(section, crawl_listing(tmp_path, names)) if isinstance(r, RepoFile)]
    assert kept == ["py/lib"] * len(KEPT)
    (exclude_table,) = [t for t in fake.tables if ".exclude_" in t]
    assert len(fake.tables[exclude_table]) == 1_000_000
    ((sql, params),) = fake.queries
    assert "exclude_repos" not in params and f"LEFT JOIN `{exclude_table}` AS x" in sql


def test_the_default_cap_stops_a_query_that_scans_more_before_any_work(bigquery, caplog):
    caplog.set_level("INFO")
    fake = bigquery([FakeFile("py/lib", f"m{i}.py", "x" * 1000) for i in range(10)], LICENSES)
    with pytest.raises(ConfigError) as e:
        estimate_and_check(section_for(fake, maximum_bytes_billed=5000), max_file_bytes=1000)
    assert "sources.bigquery.maximum_bytes_billed" in str(e.value) and "10,110" in str(e.value)
    assert fake.dry_runs == 1 and not fake.jobs  # a dry run only: nothing ran, nothing billed

    estimate = estimate_and_check(section_for(fake), max_file_bytes=1000)  # the default cap is far above 10 kB
    assert estimate.bytes_processed == 10_110 and estimate.cap == DEFAULT_MAXIMUM_BYTES_BILLED
    assert "bytes the query scans" in caplog.text and "on-demand cost" in caplog.text


def test_a_query_over_the_cap_fails_unbilled_naming_the_key(bigquery):
    fake = bigquery()
    section = section_for(fake, maximum_bytes_billed=100)
    with pytest.raises(Exception, match="sources.bigquery.maximum_bytes_billed"):
        records_of_the_stage(section, None)
    assert not fake.queries


def test_the_cost_command_prints_the_dry_run_as_a_table(bigquery, tmp_path):
    fake = bigquery()
    section = {"project": "test-project", "api_endpoint": fake.url, "anonymous": True}
    config = tmp_path / "bq.yaml"
    config.write_text(yaml.safe_dump({"name": "bq", "sources": {"bigquery": section}}))
    proc = run_cli("bigquery-cost", "--config", str(config))
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["bytes", "the", "query", "scans"] and f"{fake.scan_bytes():,}" in lines[0]
    assert lines[1].startswith("on-demand cost") and "$0.00" in lines[1]
    assert lines[2].startswith("sources.bigquery.maximum_bytes_billed") and "100,000,000,000" in lines[2] and "ok" in lines[2]
    assert fake.dry_runs == 1 and not fake.jobs


def records_of_the_stage(section, listing) -> list:
    """What ReadBigQueryFiles' two RecordFns yield, called one after the other without Beam (the composite
    itself runs in test_query_into_a_destination_table_read_in_parallel_streams): the query's shards, then
    each shard's records."""
    sizes = (1000, None)
    run_query, read_rows = RunQueryFn(section, listing, sizes), ReadRowsFn(section, sizes)
    run_query.setup()
    read_rows.setup()
    shards = [out.value for out in run_query(None)]
    return [record for shard in shards for record in read_rows(shard)]


def kept_paths(section, listing) -> None:
    records = records_of_the_stage(section, listing)
    assert sorted(r.path for r in records if isinstance(r, RepoFile)) == sorted(KEPT)


@pytest.mark.slow
def test_six_reruns_with_the_table_expired_in_between_all_succeed(bigquery, tmp_path):
    fake = bigquery()
    section = section_for(fake, read_streams=2)
    listing = crawl_listing(tmp_path)
    for _ in range(6):
        kept_paths(section, listing)
        for table in [t for t in fake.tables if ".files_" in t or ".exclude_" in t]:
            del fake.tables[table]  # both tables expired before the next run
    files_jobs = sorted((j for j in fake.jobs if j.startswith("code_corpus_files_")), key=len)
    assert len(fake.queries) == 6 and len(files_jobs) == 6
    assert files_jobs[1:] == [f"{files_jobs[0]}_{n}" for n in range(2, 7)]  # generations 2..6 of the same id


def test_an_existing_dataset_needs_no_create_permission(bigquery, tmp_path):
    fake = bigquery()
    fake.forbid_dataset_insert = True  # the worker's role lacks bigquery.datasets.create
    fake.datasets["test-project.code_corpus_staging"] = {
        "kind": "bigquery#dataset",
        "id": "test-project:code_corpus_staging",
        "datasetReference": {"projectId": "test-project", "datasetId": "code_corpus_staging"},
    }
    kept_paths(section_for(fake), crawl_listing(tmp_path))
    assert fake.dataset_inserts == 0

    missing = bigquery()
    missing.forbid_dataset_insert = True
    with pytest.raises(Exception, match="bigquery.datasets.create"):  # only a missing dataset needs it
        Staging(make_client(section_for(missing)), section_for(missing)).ensure()


def test_an_expired_read_session_is_opened_again_and_no_row_is_read_twice(bigquery, tmp_path):
    fake = bigquery()
    fake.sessions_to_expire = 3  # every shard's first session expires after its first batch
    kept_paths(section_for(fake, read_streams=3), crawl_listing(tmp_path))
    assert fake.sessions == 6 and not fake.sessions_to_expire


def test_a_job_that_jobs_get_does_not_see_yet_after_a_409_is_asked_for_again(bigquery, tmp_path):
    fake = bigquery()
    section = section_for(fake)
    listing = crawl_listing(tmp_path)
    kept_paths(section, listing)
    fake.get_job_misses = 2  # BigQuery answers 409 to the insert, then 404 to jobs.get, twice
    kept_paths(section, listing)
    assert fake.missed == 2 and len(fake.queries) == 1


def test_the_job_dry_runs_its_own_sql_with_the_exclusion_table(bigquery, tmp_path):
    fake = bigquery()
    kept_paths(section_for(fake), crawl_listing(tmp_path))
    (exclude_table,) = [t for t in fake.tables if ".exclude_" in t]
    assert fake.dry_runs == 1 and fake.dry_run_sql == [query_sql("bigquery-public-data.github_repos", f"`{exclude_table}`")]


def test_table_ids_of_domain_scoped_projects_are_parsed(bigquery):
    from google.cloud.bigquery_storage_v1 import types

    calls = []

    class Recorder:
        def create_read_session(self, parent, read_session, max_stream_count):
            calls.append((parent, read_session.table, read_session.read_options.row_restriction))
            return types.ReadSession(streams=[])

    assert list(session_rows(Recorder(), "example.com:corp.staging.files_ab", "example.com:corp", 4)) == []
    assert calls == [("projects/example.com:corp", "projects/example.com:corp/datasets/staging/tables/files_ab", "shard = 4")]


def test_a_dataflow_run_names_the_project_it_bills(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.run import WORKER_PYTHON, check_worker_paths
    from schemas.config import load_config

    path = tmp_path / "bq.yaml"
    path.write_text(yaml.safe_dump({"name": "bq", "sources": {"bigquery": {}}}))
    options = PipelineOptions(["--runner", "DataflowRunner"])
    with pytest.raises(ConfigError, match="sources.bigquery.project: set it"):
        check_worker_paths(load_config(str(path)), "gs://b/datasets", options, launcher_python=WORKER_PYTHON)
