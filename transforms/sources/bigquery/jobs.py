"""The BigQuery calls of the BigQuery source: staging dataset, exclusion load, query, dry run, read sessions.

Every job has a deterministic id, a digest of everything that decides its result (SQL,
parameters, the excluded names, the bytes-billed cap, the tables it writes). A retried
bundle, or a rerun with the same inputs, asks for the same id; BigQuery answers 409, and
the job it already ran (and billed) is reused with its destination table (`jobs.get` is
retried while it does not see the job yet). A reused job that failed for a reason other
than the cap, or whose table has expired, is run again under the next generation of the
id (`<id>_2`, `<id>_3`, ...), with no limit: each earlier generation costs one 409 and
one `jobs.get`, both free.

The query writes to an explicit destination table (`files_<digest>`) in the staging
dataset, whose tables expire after `results_expiration_hours`. An anonymous result is
capped at about 10 GB; a destination table is not. The query gives each row a `shard`
(a fingerprint of its repository, ref and path, modulo `read_streams`), and each shard is
read by one worker task through its own BigQuery Storage Read API session restricted to
`shard = <n>`. A session expires after 6 hours; the task then opens a new one for its
shard and skips the rows it already read, so a long read recovers instead of failing.

The calls need, in `project`: roles/bigquery.jobUser (jobs.create, jobs.get), and on the
staging dataset roles/bigquery.dataEditor (tables.get/update/create, readsessions); the
dataset is looked up first and created only when missing, which needs
bigquery.datasets.create (roles/bigquery.user). roles/bigquery.readSessionUser lets the
workers open read sessions.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import logging
import os
from json.encoder import encode_basestring_ascii as encode_json_string  # what json.dumps does to a str, at C speed
from typing import Callable, Iterable

from schemas.errors import ConfigError
from schemas.sources_config import BigQuerySource
from transforms.sources.common import license_keys

log = logging.getLogger(__name__)

SQL_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql", "github_files.sql")
NOTHING_EXCLUDED = "(SELECT CAST(NULL AS STRING) AS repo_name LIMIT 0)"
USD_PER_TIB = 6.25  # on-demand query price per TiB scanned (cloud.google.com/bigquery/pricing)
MAX_GENERATIONS = 10_000  # a guard only: each rerun after an expiry takes the next generation of a job id
SESSION_ATTEMPTS = 4  # read sessions one shard may open (a session expires after 6 hours)
GET_JOB_RETRY_SECONDS = 60.0  # how long jobs.get is retried after a 409 while it says 404
CAP_KEY = "sources.bigquery.maximum_bytes_billed"


def bigquery_module():
    try:
        from google.cloud import bigquery
    except ImportError:
        raise ImportError("sources.bigquery needs google-cloud-bigquery: pip install 'code-corpus[gcp]'") from None
    return bigquery


def make_client(section: BigQuerySource):
    bigquery = bigquery_module()
    kwargs = {}
    if section.api_endpoint:
        kwargs["client_options"] = {"api_endpoint": section.api_endpoint}
    if section.anonymous:
        from google.auth.credentials import AnonymousCredentials

        kwargs["credentials"] = AnonymousCredentials()
    return bigquery.Client(project=section.project, location=section.location, **kwargs)


def make_read_client(section: BigQuerySource):
    """A Storage Read API client; with `storage_api_endpoint`, plain gRPC to that host:port (an emulator)."""
    from google.cloud import bigquery_storage_v1

    if not section.storage_api_endpoint:
        return bigquery_storage_v1.BigQueryReadClient()
    import grpc
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    channel = grpc.insecure_channel(section.storage_api_endpoint)
    return bigquery_storage_v1.BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))


def query_sql(dataset: str, exclude_from: str = NOTHING_EXCLUDED) -> str:
    """The query, with the dataset and the exclusion table (or an empty one) filled in."""
    with open(SQL_FILE, encoding="utf-8") as f:
        return f.read().replace("{dataset}", dataset).replace("{exclude}", exclude_from)


def query_parameters(section: BigQuerySource, max_file_bytes: int, max_notebook_bytes: int | None = None) -> list:
    bigquery = bigquery_module()
    return [
        bigquery.ArrayQueryParameter("licenses", "STRING", license_keys(section.licenses, "sources.bigquery.licenses")),
        bigquery.ArrayQueryParameter("extensions", "STRING", [e.lower() for e in section.extensions]),
        bigquery.ScalarQueryParameter("max_file_bytes", "INT64", max_file_bytes),
        bigquery.ScalarQueryParameter("max_notebook_bytes", "INT64", max_notebook_bytes or max_file_bytes),
        bigquery.ScalarQueryParameter("read_shards", "INT64", section.read_streams),
    ]


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What a dry run says the query would scan, against the configured cap."""

    bytes_processed: int
    cap: int

    @property
    def usd(self) -> float:
        return self.bytes_processed / 2**40 * USD_PER_TIB

    def table(self) -> str:
        rows = [
            ("bytes the query scans", f"{self.bytes_processed:,}", f"{self.bytes_processed / 1e12:.3f} TB"),
            ("on-demand cost", f"${self.usd:,.2f}", f"at ${USD_PER_TIB}/TiB"),
            (CAP_KEY, f"{self.cap:,}", "ok" if self.bytes_processed <= self.cap else "TOO LOW: the query would fail"),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{a:<{width}}  {b:>22}  {c}" for a, b, c in rows)


def dry_run(
    client,
    section: BigQuerySource,
    max_file_bytes: int,
    max_notebook_bytes: int | None = None,
    exclude_table: str | None = None,
) -> Estimate:
    """A BigQuery dry run of the query the job runs: nothing runs, nothing is billed.

    Without `exclude_table` (the launcher's check, before the exclusions are loaded) an empty
    subquery stands in for it: the same query less the exclusion table's few MB.
    """
    bigquery = bigquery_module()
    config = bigquery.QueryJobConfig(
        dry_run=True, use_query_cache=False, query_parameters=query_parameters(section, max_file_bytes, max_notebook_bytes)
    )
    job = client.query(job_sql(section, exclude_table), job_config=config, location=section.location)
    return Estimate(int(job.total_bytes_processed or 0), section.maximum_bytes_billed)


def job_sql(section: BigQuerySource, exclude_table: str | None) -> str:
    return query_sql(section.dataset, f"`{exclude_table}`" if exclude_table else NOTHING_EXCLUDED)


def check_cap(estimate: Estimate) -> None:
    """Fail before any work when the query would scan more than the cap lets it bill."""
    if estimate.bytes_processed > estimate.cap:
        raise ConfigError(
            f"{CAP_KEY}: the query would scan {estimate.bytes_processed:,} bytes (about ${estimate.usd:,.2f}), "
            f"more than the cap of {estimate.cap:,}; raise the cap on purpose to run it:\n{estimate.table()}"
        )


class Staging:
    """The staging dataset of one section: created with a table expiration, holding the run's tables."""

    def __init__(self, client, section: BigQuerySource):
        self.client = client
        self.section = section
        self.dataset = f"{client.project}.{section.results_dataset}"

    def ensure(self) -> None:
        """Create the staging dataset only when it is missing: creating needs bigquery.datasets.create,
        which a worker whose dataset an administrator made beforehand need not have."""
        from google.api_core.exceptions import NotFound

        try:
            self.client.get_dataset(self.dataset)
            return
        except NotFound:
            pass
        bigquery = bigquery_module()
        dataset = bigquery.Dataset(self.dataset)
        dataset.location = self.section.location
        dataset.default_table_expiration_ms = self.section.results_expiration_hours * 3_600_000
        self.client.create_dataset(dataset, exists_ok=True)

    def expire(self, table_id: str) -> None:
        """Give a table the expiration even when the dataset existed before without one."""
        table = self.client.get_table(table_id)
        hours = datetime.timedelta(hours=self.section.results_expiration_hours)
        table.expires = datetime.datetime.now(datetime.timezone.utc) + hours
        self.client.update_table(table, ["expires"])

    def table_exists(self, table_id: str) -> bool:
        from google.api_core.exceptions import NotFound

        try:
            self.client.get_table(table_id)
        except NotFound:
            return False
        return True

    def run_job(self, job_id: str, start: Callable[[str], object], table_id: str):
        """Start the job under `job_id`, or reuse the one already there (see the module docstring).

        Returns the job and its generation (1 for `job_id`, n for `<job_id>_<n>`).
        """
        from google.api_core.exceptions import GoogleAPICallError

        for generation in range(1, MAX_GENERATIONS + 1):
            attempt_id = job_id if generation == 1 else f"{job_id}_{generation}"
            job, reused = self.start_or_find(attempt_id, start)
            try:
                wait(job)
            except GoogleAPICallError as e:
                if (job.error_result or {}).get("reason") == "bytesBilledLimitExceeded":
                    raise ConfigError(f"{CAP_KEY}: BigQuery refused the query: {e}; raise the cap on purpose") from None
                if not reused:
                    raise
                continue  # an earlier run's failure: run it again as the next generation
            if reused and not self.table_exists(table_id):
                continue  # its table expired
            return job, generation
        raise RuntimeError(f"BigQuery job {job_id}: {MAX_GENERATIONS} generations tried")

    def start_or_find(self, job_id: str, start: Callable[[str], object]) -> tuple[object, bool]:
        """(job, reused): the job started now, or the one BigQuery already has under that id (409)."""
        from google.api_core import retry
        from google.api_core.exceptions import Conflict, NotFound

        try:
            return start(job_id), False
        except Conflict:
            pass
        # Right after a 409, jobs.get can still answer 404 for a moment: ask again until it sees the job.
        patient = retry.Retry(
            predicate=retry.if_exception_type(NotFound), initial=0.2, maximum=5.0, timeout=GET_JOB_RETRY_SECONDS
        )
        job = self.client.get_job(job_id, location=self.section.location, retry=patient)
        log.info("BigQuery job %s already exists; reusing it", job_id)
        return job, True

    def load_exclusions(self, names: Iterable[str]) -> str:
        """Load the names into a one-column table (newline-delimited JSON); returns its id."""
        bigquery = bigquery_module()
        data = "".join(f'{{"repo_name": {encode_json_string(n)}}}\n' for n in sorted(set(names))).encode()
        key = hashlib.sha256(data).hexdigest()[:32]
        table_id = f"{self.dataset}.exclude_{key}"
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            schema=[bigquery.SchemaField("repo_name", "STRING", mode="REQUIRED")],
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )

        def start(job_id):
            return self.client.load_table_from_file(
                io.BytesIO(data), table_id, job_id=job_id, job_config=config, location=self.section.location
            )

        self.run_job(f"code_corpus_exclude_{key}", start, table_id)
        self.expire(table_id)
        return table_id

    def run_query(
        self, exclude_table: str | None, max_file_bytes: int, max_notebook_bytes: int | None = None
    ) -> tuple[str, object, int]:
        """Run the query into its destination table (or reuse the run that did).

        Returns the table id, the job and its generation. A dry run of the very SQL the job
        runs comes first: a cap below its scan stops here, unbilled.
        """
        bigquery = bigquery_module()
        section = self.section
        sql = job_sql(section, exclude_table)
        check_cap(dry_run(self.client, section, max_file_bytes, max_notebook_bytes, exclude_table))
        params = query_parameters(section, max_file_bytes, max_notebook_bytes)
        key = digest(sql, [p.to_api_repr() for p in params], section.maximum_bytes_billed, self.dataset, section.location)
        table_id = f"{self.dataset}.files_{key}"
        config = bigquery.QueryJobConfig(
            destination=table_id,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            maximum_bytes_billed=section.maximum_bytes_billed,
            query_parameters=params,
            use_legacy_sql=False,
        )
        job, generation = self.run_job(
            f"code_corpus_files_{key}",
            lambda job_id: self.client.query(sql, job_config=config, job_id=job_id, location=section.location, job_retry=None),
            table_id,
        )
        self.expire(table_id)
        return table_id, job, generation


def wait(job) -> None:
    """Wait for a job; a query job is not restarted under a new, random id (job_retry=None)."""
    if isinstance(job, bigquery_module().QueryJob):
        job.result(job_retry=None)
    else:
        job.result()


def read_shard(read_client, table_id: str, billing_project: str, shard: int) -> Iterable[dict]:
    """The rows of one shard of the result table, each once, through as many sessions as it takes.

    A Storage Read session expires after 6 hours (FAILED_PRECONDITION "session expired"); a new
    session for the shard reads it again and the rows already yielded are skipped by their key.
    """
    from google.api_core.exceptions import FailedPrecondition

    seen = set()
    for attempt in range(1, SESSION_ATTEMPTS + 1):
        try:
            for row in session_rows(read_client, table_id, billing_project, shard):
                key = hashlib.blake2b(f"{row['repo_name']}\0{row['ref']}\0{row['path']}".encode(), digest_size=16).digest()
                if key not in seen:
                    seen.add(key)
                    yield row
            return
        except FailedPrecondition as e:
            log.warning(
                "read session of %s shard %d ended (%s); opening a new one (%d/%d)", table_id, shard, e, attempt, SESSION_ATTEMPTS
            )
    raise RuntimeError(f"{table_id} shard {shard}: {SESSION_ATTEMPTS} read sessions ended before the shard was read")


def session_rows(read_client, table_id: str, billing_project: str, shard: int) -> Iterable[dict]:
    """A new Storage Read API session over the rows of one shard, read stream after stream."""
    from google.cloud.bigquery_storage_v1 import types

    table = bigquery_module().TableReference.from_string(table_id)  # domain-scoped projects hold a dot too
    session = read_client.create_read_session(
        parent=f"projects/{billing_project}",
        read_session=types.ReadSession(
            table=table.to_bqstorage(),
            data_format=types.DataFormat.ARROW,
            read_options=types.ReadSession.TableReadOptions(row_restriction=f"shard = {shard}"),
        ),
        max_stream_count=1,
    )
    for stream in session.streams:
        yield from stream_rows(read_client, stream.name)


def stream_rows(read_client, stream: str) -> Iterable[dict]:
    """A stream's rows as dicts of Python values, one Arrow record batch in memory at a time.

    The client resumes a broken stream at the row it reached; the first answer carries the schema.
    """
    import pyarrow as pa

    schema = None
    for message in read_client.read_rows(stream):
        if schema is None:
            schema = pa.ipc.read_schema(pa.py_buffer(message.arrow_schema.serialized_schema))
        batch = pa.ipc.read_record_batch(pa.py_buffer(message.arrow_record_batch.serialized_record_batch), schema)
        yield from batch.to_pylist()
