"""The corpus graph translates for Google Cloud Dataflow, without a GCP account.

The DataflowRunner's own `--dry_run` path applies its overrides, translates the graph
to the portable pipeline proto with the worker image as its Docker environment, and
builds the job description; only the submission is skipped. We then check that every
leaf transform is a primitive Dataflow runs, and that every coder and DoFn of the proto
loads back, which is what a worker does.
"""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
import yaml
from apache_beam.internal import pickler
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.pipeline_context import PipelineContext

from pipeline.corpus import build_corpus
from pipeline.run import WORKER_PYTHON, check_worker_paths
from schemas.config import ConfigError, load_config
from schemas.sources_config import SourcesConfig
from tests.conftest import SAMPLE_CONFIG
from tests.transforms.sources.bigquery_fakes import FakeBigQuery, FakeFile
from transforms.sources.bigquery.source import ReadRowsFn, RunQueryFn

pytestmark = pytest.mark.slow  # translates the whole graph with Dataflow's runner

IMAGE = "us-central1-docker.pkg.dev/example-project/images/code-corpus:0.1.0"
DATAFLOW_PRIMITIVES = {
    "beam:transform:pardo:v1",
    "beam:transform:group_by_key:v1",
    "beam:transform:impulse:v1",
    "beam:transform:flatten:v1",
    "beam:transform:window_into:v1",
}


def dry_run_options() -> PipelineOptions:
    return PipelineOptions(
        [
            "--runner=DataflowRunner",
            "--project=example-project",
            "--region=us-central1",
            "--temp_location=gs://example-bucket/tmp",
            f"--sdk_container_image={IMAGE}",
            "--sdk_location=container",
            "--dry_run=True",
            # Beam's own record of the launcher's packages (a `pip freeze` per launch) is not under test.
            "--experiments=disable_logging_submission_environment",
        ]
    )


def test_corpus_graph_translates_for_dataflow():
    config = load_config(SAMPLE_CONFIG)
    p = beam.Pipeline(options=dry_run_options())
    build_corpus(p, config, "gs://example-bucket/datasets/sample/.v0001.partial")
    result = p.run()

    proto = result.job.proto_pipeline
    leaves = {t.unique_name: t.spec.urn for t in proto.components.transforms.values() if not t.subtransforms}
    unsupported = {name: urn for name, urn in leaves.items() if urn not in DATAFLOW_PRIMITIVES}
    assert not unsupported
    assert any("WriteDocuments" in name for name in leaves)

    environments = list(proto.components.environments.values())
    assert environments and all(e.urn == "beam:env:docker:v1" for e in environments)
    assert all(IMAGE.encode() in e.payload for e in environments)

    job = json.loads(result.job.json())
    assert job["type"] == "JOB_TYPE_BATCH"

    fns = load_as_a_worker_does(proto)
    assert len(fns) == sum(urn == "beam:transform:pardo:v1" for urn in leaves.values())
    assert all(fn == python_urns.KEY_WITH_NONE_DOFN or isinstance(fn, beam.DoFn) for fn in fns)


def load_as_a_worker_does(proto) -> list:
    """Every coder of the job's proto built and every ParDo's DoFn unpickled, as a worker's bundle
    processor does with its part of the graph; returns the DoFns (the urn of one the SDK makes itself)."""
    context = PipelineContext(proto.components)
    for coder_id in proto.components.coders:
        context.coders.get_by_id(coder_id)
    fns = []
    for t in proto.components.transforms.values():
        if not t.subtransforms and t.spec.urn == "beam:transform:pardo:v1":
            do_fn = beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload).do_fn
            fns.append(pickler.loads(do_fn.payload)[0] if do_fn.urn == python_urns.PICKLED_DOFN_INFO else do_fn.urn)
    return fns


def stage_fn(proto, name_part: str):
    """The RecordFn of the ParDo whose name holds `name_part`, unpickled from the job's proto as a worker would."""
    (transform,) = [
        t for t in proto.components.transforms.values() if name_part in t.unique_name and t.spec.urn == "beam:transform:pardo:v1"
    ]
    payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
    (fn,) = pickler.loads(payload.do_fn.payload)[0].fns  # a one-stage ParDo
    return fn


def test_a_bigquery_source_translates_with_its_cap(tmp_path):
    cap = 3_000_000_000_000
    fake = FakeBigQuery([FakeFile("py/lib", "a.py", "a = 1\n")], {"py/lib": "mit"})
    try:
        section = {
            "project": "example-project",
            "api_endpoint": fake.url,
            "anonymous": True,
            "storage_api_endpoint": fake.storage_endpoint,
            "maximum_bytes_billed": cap,
        }
        path = tmp_path / "bigquery.yaml"
        path.write_text(yaml.safe_dump({"name": "bq", "sources": {"bigquery": section}}))
        p = beam.Pipeline(options=dry_run_options())
        build_corpus(p, load_config(str(path)), "gs://example-bucket/datasets/bq/.v0001.partial")
        result = p.run()
    finally:
        fake.close()
    assert fake.dry_runs == 1 and not fake.jobs  # the launcher checked the cost; nothing ran

    proto = result.job.proto_pipeline
    leaves = {t.unique_name: t.spec.urn for t in proto.components.transforms.values() if not t.subtransforms}
    assert not {name: urn for name, urn in leaves.items() if urn not in DATAFLOW_PRIMITIVES}
    run_query, read_rows = stage_fn(proto, "RunQuery"), stage_fn(proto, "ReadRows")
    assert type(run_query) is RunQueryFn and type(read_rows) is ReadRowsFn
    assert run_query.section.maximum_bytes_billed == cap  # the cap travels with the query step
    assert any("SpreadShards" in name for name in leaves)  # the read shards are spread over the workers


def test_a_launcher_on_another_python_than_the_worker_image_stops(tmp_path):
    config = load_config(SAMPLE_CONFIG).replace(sources=SourcesConfig())
    check_worker_paths(config, "gs://b/datasets", dry_run_options(), launcher_python=WORKER_PYTHON)
    with pytest.raises(ConfigError, match=r"this launcher runs Python 3.12, the worker image .* runs 3.11"):
        check_worker_paths(config, "gs://b/datasets", dry_run_options(), launcher_python=(3, 12))
    check_worker_paths(config, str(tmp_path), PipelineOptions([]), launcher_python=(3, 12))  # local runs: any Python
