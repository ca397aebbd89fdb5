"""A local BigQuery: the REST API's dataset, table and job calls, and the Storage Read API over gRPC.

REST (werkzeug on 127.0.0.1, what google-cloud-bigquery calls with a custom api_endpoint):
datasets.insert/get, tables.get/patch, jobs.insert (queries, dry runs), jobs.get,
jobs.getQueryResults, and resumable uploads for load jobs. A job id that exists is
answered 409, as BigQuery does. A query is "run" over `files` and `licenses` by applying
its parameters and its anti-join the way sql/github_files.sql does, into its destination
table; a query whose scan is over its maximumBytesBilled fails with bytesBilledLimitExceeded.

gRPC (grpcio on 127.0.0.1, what google-cloud-bigquery-storage calls through a plain channel):
BigQueryRead.CreateReadSession splits a table (or the rows its `shard = n` row restriction
keeps) into streams and ReadRows serves each in Arrow record batches of `batch_rows`, the
schema in the first answer.

Failure modes, each switched on by a field: datasets.insert answered 403 (a role without
bigquery.datasets.create), jobs.get answering 404 right after a 409 (BigQuery's lag), and
read sessions that expire mid-read (FAILED_PRECONDITION "session expired", after 6 hours).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import re
import threading
import urllib.parse
import zlib

import grpc
import pyarrow as pa
from google.cloud.bigquery_storage_v1 import types
from werkzeug.wrappers import Request, Response

from tests.transforms.sources.network_fakes import FakeServer, json_response

ARROW_SCHEMA = pa.schema(
    [
        ("repo_name", pa.string()),
        ("ref", pa.string()),
        ("path", pa.string()),
        ("license", pa.string()),
        ("is_symlink", pa.bool_()),
        ("size", pa.int64()),
        ("binary", pa.bool_()),
        ("content", pa.string()),
        ("shard", pa.int64()),
    ]
)
EXCLUDE_FROM = re.compile(r"LEFT JOIN `([^`]+)` AS x")
SHARD_RESTRICTION = re.compile(r"shard = (\d+)")


@dataclasses.dataclass
class FakeFile:
    """A row of the github_repos files table joined with its contents row."""

    repo_name: str
    path: str
    content: str | None
    binary: bool = False
    symlink: bool = False
    ref: str = "refs/heads/master"
    size: int | None = None

    @property
    def nbytes(self) -> int:
        return self.size if self.size is not None else len((self.content or "").encode())


def error(code: int, status: str, message: str, reason: str) -> Response:
    return json_response(
        {"error": {"code": code, "status": status, "message": message, "errors": [{"reason": reason, "message": message}]}}, code
    )


class FakeBigQuery:
    def __init__(self, files: list[FakeFile], licenses: dict[str, str], batch_rows: int = 4):
        self.files = files
        self.licenses = licenses
        self.batch_rows = batch_rows
        self.jobs = {}  # job id → resource
        self.tables = {}  # project.dataset.table → list of row dicts
        self.datasets = {}  # project.dataset → resource
        self.uploads = {}  # upload id → job resource (metadata)
        self.expiry = {}  # table id → expirationTime set by tables.patch
        self.streams = {}  # read stream name → its rows
        self.sessions = 0
        self.queries = []  # (sql, parameters) of every query job run (not dry runs, not 409s)
        self.dry_runs = 0
        self.dry_run_sql = []  # the SQL of every dry run
        self.inserts = collections.Counter()  # job id → insert requests (409s included)
        self.batches = collections.Counter()  # stream name → record batches served
        self.dataset_inserts = 0  # datasets.insert requests
        self.forbid_dataset_insert = False  # answer datasets.insert with 403, as for a role without datasets.create
        self.get_job_misses = 0  # jobs.get answers 404 this many times after a 409 (then finds the job)
        self.missed = 0
        self.sessions_to_expire = 0  # this many of the next sessions expire after serving one batch per stream
        self.expiring = set()  # names of the sessions that expire
        self.lock = threading.Lock()
        self.server = FakeServer(self.wsgi)
        self.grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
        self.grpc_server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "google.cloud.bigquery.storage.v1.BigQueryRead",
                    {
                        "CreateReadSession": grpc.unary_unary_rpc_method_handler(
                            self.create_read_session, types.CreateReadSessionRequest.deserialize, types.ReadSession.serialize
                        ),
                        "ReadRows": grpc.unary_stream_rpc_method_handler(
                            self.read_rows, types.ReadRowsRequest.deserialize, types.ReadRowsResponse.serialize
                        ),
                    },
                )
            ]
        )
        self.grpc_port = self.grpc_server.add_insecure_port("127.0.0.1:0")
        self.grpc_server.start()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def storage_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def scan_bytes(self) -> int:
        """What the query "scans": every file's path, name and content bytes."""
        return sum(f.nbytes + len(f.path) + len(f.repo_name) for f in self.files)

    def close(self) -> None:
        self.server.close()
        self.grpc_server.stop(None)

    # -- REST ------------------------------------------------------------------------------

    def wsgi(self, environ, start_response):
        request = Request(environ)
        path = request.path
        if path.startswith("/upload/bigquery/v2/"):
            response = self.upload(request)
        else:
            response = self.route(request, path.removeprefix("/bigquery/v2"))
        return response(environ, start_response)

    def route(self, request: Request, path: str) -> Response:
        method = request.method
        if method == "POST" and re.fullmatch(r"/projects/[^/]+/jobs", path):
            return self.insert(request.get_json())
        if m := re.fullmatch(r"/projects/[^/]+/jobs/([^/]+)", path):
            with self.lock:
                lagging = self.missed < self.get_job_misses
                self.missed += lagging
            job = None if lagging else self.jobs.get(m.group(1))
            return json_response(job) if job else error(404, "NOT_FOUND", f"Not found: Job {m.group(1)}", "notFound")
        if m := re.fullmatch(r"/projects/[^/]+/queries/([^/]+)", path):
            job = self.jobs[m.group(1)]
            return json_response(
                {
                    "kind": "bigquery#getQueryResultsResponse",
                    "jobReference": job["jobReference"],
                    "jobComplete": True,
                    "totalRows": "0",
                    "schema": {"fields": []},
                }
            )
        if m := re.fullmatch(r"/projects/([^/]+)/datasets", path):
            return self.create_dataset(m.group(1), request.get_json())
        if m := re.fullmatch(r"/projects/([^/]+)/datasets/([^/]+)", path):
            found = self.datasets.get(f"{m.group(1)}.{m.group(2)}")
            return json_response(found) if found else error(404, "NOT_FOUND", "Not found: Dataset", "notFound")
        if m := re.fullmatch(r"/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)", path):
            table_id = ".".join(m.groups())
            if table_id not in self.tables:
                return error(404, "NOT_FOUND", f"Not found: Table {table_id}", "notFound")
            if method == "PATCH":
                self.expiry[table_id] = request.get_json().get("expirationTime")
            return json_response(self.table_resource(table_id))
        return error(404, "NOT_FOUND", f"Not found: {path}", "notFound")

    def create_dataset(self, project: str, body: dict) -> Response:
        ref = body["datasetReference"]
        key = f"{project}.{ref['datasetId']}"
        with self.lock:
            self.dataset_inserts += 1
        if self.forbid_dataset_insert:
            return error(
                403,
                "PERMISSION_DENIED",
                f"Access Denied: Project {project}: User does not have bigquery.datasets.create permission in project",
                "accessDenied",
            )
        with self.lock:
            if key in self.datasets:
                return error(409, "ALREADY_EXISTS", f"Already Exists: Dataset {key}", "duplicate")
            self.datasets[key] = {"kind": "bigquery#dataset", "id": key.replace(".", ":"), **body}
        return json_response(self.datasets[key])

    def table_resource(self, table_id: str) -> dict:
        project, dataset, table = table_id.split(".")
        return {
            "kind": "bigquery#table",
            "id": f"{project}:{dataset}.{table}",
            "type": "TABLE",
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
            "numRows": str(len(self.tables[table_id])),
            "location": "US",
            "expirationTime": self.expiry.get(table_id),
        }

    def claim(self, body: dict) -> tuple[str, Response | None]:
        """The job id of an insert, and a 409 answer when a job with that id exists."""
        job_id = body["jobReference"]["jobId"]
        with self.lock:
            self.inserts[job_id] += 1
            if job_id in self.jobs:
                return job_id, error(409, "ALREADY_EXISTS", f"Already Exists: Job {job_id}", "duplicate")
        return job_id, None

    def finish(self, body: dict, job_id: str, statistics: dict, error_result: dict | None = None) -> dict:
        ref = {**body["jobReference"], "location": body["jobReference"].get("location") or "US"}
        status = {"state": "DONE", **({"errorResult": error_result, "errors": [error_result]} if error_result else {})}
        resource = {
            "kind": "bigquery#job",
            "id": f"{ref['projectId']}:{ref['location']}.{job_id}",
            "jobReference": ref,
            "configuration": body["configuration"],
            "status": status,
            "statistics": {
                "creationTime": "1700000000000",
                "startTime": "1700000000000",
                "endTime": "1700000001000",
                **statistics,
            },
        }
        with self.lock:
            self.jobs[job_id] = resource
        return resource

    def insert(self, body: dict) -> Response:
        config = body["configuration"]
        query = config["query"]
        scanned = self.scan_bytes()
        if config.get("dryRun"):
            self.dry_runs += 1
            self.dry_run_sql.append(query["query"])
            return json_response(
                {
                    "jobReference": body["jobReference"],
                    "configuration": config,
                    "status": {"state": "DONE"},
                    "statistics": {"totalBytesProcessed": str(scanned), "query": {"totalBytesProcessed": str(scanned)}},
                }
            )
        job_id, conflict = self.claim(body)
        if conflict:
            return conflict
        cap = int(query.get("maximumBytesBilled") or 0)
        if cap and scanned > cap:
            message = f"Query exceeded limit for bytes billed: {cap}. {scanned} or higher required."
            failed = {"reason": "bytesBilledLimitExceeded", "message": message}
            return json_response(self.finish(body, job_id, {"query": {"totalBytesProcessed": "0"}}, failed))
        params = self.parameters(query)
        with self.lock:
            self.queries.append((query["query"], params))
        excluded = self.excluded(query["query"])
        limits = {False: int(params["max_file_bytes"]), True: int(params["max_notebook_bytes"])}
        shards = int(params["read_shards"])
        rows = []
        for f in self.files:
            license = self.licenses.get(f.repo_name)
            if (
                license in params["licenses"]
                and any(f.path.lower().endswith(e) for e in params["extensions"])
                and f.repo_name.lower() not in excluded
            ):
                rows.append(
                    dict(
                        repo_name=f.repo_name,
                        ref=f.ref,
                        path=f.path,
                        license=license,
                        is_symlink=f.symlink,
                        size=f.nbytes,
                        binary=f.binary,
                        content=f.content if f.nbytes <= limits[f.path.lower().endswith(".ipynb")] else None,
                        shard=zlib.crc32(f"{f.repo_name}/{f.ref}/{f.path}".encode()) % shards,
                    )
                )
        dest = query["destinationTable"]
        self.tables[f"{dest['projectId']}.{dest['datasetId']}.{dest['tableId']}"] = rows
        stats = {"query": {"totalBytesProcessed": str(scanned), "totalBytesBilled": str(scanned), "statementType": "SELECT"}}
        return json_response(self.finish(body, job_id, stats))

    def excluded(self, sql: str) -> set[str]:
        m = EXCLUDE_FROM.search(sql)
        return {row["repo_name"] for row in self.tables[m.group(1)]} if m else set()

    @staticmethod
    def parameters(query: dict) -> dict:
        values = {}
        for p in query.get("queryParameters", []):
            value = p["parameterValue"]
            if "arrayValues" in value or p["parameterType"]["type"] == "ARRAY":
                values[p["name"]] = [v["value"] for v in value.get("arrayValues", [])]
            else:
                values[p["name"]] = value["value"]
        return values

    def upload(self, request: Request) -> Response:
        """Resumable upload of a load job: POST the job (→ Location), then PUT the bytes (→ the job)."""
        if request.method == "POST":
            body = request.get_json()
            job_id, conflict = self.claim(body)
            if conflict:
                return conflict
            self.uploads[job_id] = body
            location = f"{self.url}{request.path}?uploadType=resumable&upload_id={urllib.parse.quote(job_id)}"
            return Response("", status=200, headers={"Location": location})
        body = self.uploads.pop(request.args["upload_id"])
        job_id = body["jobReference"]["jobId"]
        dest = body["configuration"]["load"]["destinationTable"]
        lines = [line for line in request.get_data().decode().splitlines() if line]
        rows = json.loads("[" + ",".join(lines) + "]")  # newline-delimited JSON, parsed in one call
        self.tables[f"{dest['projectId']}.{dest['datasetId']}.{dest['tableId']}"] = rows
        return json_response(self.finish(body, job_id, {"load": {"outputRows": str(len(rows))}}))

    # -- Storage Read API (gRPC) -----------------------------------------------------------

    def create_read_session(self, request, context):
        table_path = request.read_session.table  # projects/p/datasets/d/tables/t
        _, project, _, dataset, _, table = table_path.split("/")
        rows = self.tables[f"{project}.{dataset}.{table}"]
        restriction = SHARD_RESTRICTION.fullmatch(request.read_session.read_options.row_restriction or "")
        if restriction:
            rows = [r for r in rows if r["shard"] == int(restriction.group(1))]
        count = max(1, min(request.max_stream_count or 1, len(rows)))
        with self.lock:
            self.sessions += 1
            name = f"projects/{project}/locations/us/sessions/s{self.sessions}"
            if self.sessions_to_expire:
                self.sessions_to_expire -= 1
                self.expiring.add(name)
            for i in range(count):
                self.streams[f"{name}/streams/{i}"] = rows[i::count]
        return types.ReadSession(
            name=name,
            table=table_path,
            data_format=types.DataFormat.ARROW,
            arrow_schema=types.ArrowSchema(serialized_schema=ARROW_SCHEMA.serialize().to_pybytes()),
            streams=[types.ReadStream(name=f"{name}/streams/{i}") for i in range(count)],
        )

    def read_rows(self, request, context):
        rows = self.streams[request.read_stream][request.offset :]
        schema = types.ArrowSchema(serialized_schema=ARROW_SCHEMA.serialize().to_pybytes())
        session = request.read_stream.split("/streams/")[0]
        for start in range(0, len(rows), self.batch_rows):
            if start and session in self.expiring:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"there was an error operating on '{request.read_stream}': session expired at 2026-01-01T06:00:00+00:00",
                )
            part = rows[start : start + self.batch_rows]
            batch = pa.RecordBatch.from_pylist(part, schema=ARROW_SCHEMA)
            with self.lock:
                self.batches[request.read_stream] += 1
            yield types.ReadRowsResponse(
                arrow_record_batch=types.ArrowRecordBatch(
                    serialized_record_batch=batch.serialize().to_pybytes(), row_count=len(part)
                ),
                row_count=len(part),
                arrow_schema=schema if start == 0 else None,
            )
