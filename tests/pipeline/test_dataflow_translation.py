"""The corpus graph translates for Google Cloud Dataflow, without a GCP account.

The DataflowRunner's own `--dry_run` path applies its overrides, translates the graph
to the portable pipeline proto with the worker image as its Docker environment, and
builds the job description; only the submission is skipped. We then check that every
leaf transform is a primitive Dataflow runs, and that the proto loads back into a
pipeline (every DoFn and coder unpickles), which is what a worker does.
"""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.corpus import build_corpus
from schemas.config import load_config
from tests.conftest import SAMPLE_CONFIG

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

    reloaded = beam.Pipeline.from_runner_api(proto, beam.runners.DirectRunner(), PipelineOptions())
    names = {t.unique_name for t in reloaded.to_runner_api().components.transforms.values()}
    assert set(leaves) <= names
