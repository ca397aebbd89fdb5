"""Every spelling of `--runner` that Beam resolves to Dataflow gets the Dataflow preflight.

Beam resolves `--runner` case-insensitively, with or without `Runner`, or as a dotted
class path; the checks that stop a Dataflow job before it is submitted (the worker
image's Python, paths on this machine's disk, crawl tokens) must not depend on how the
user spelled it.
"""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.options import LOCAL_RUNNER, make_pipeline_options, runs_on_dataflow
from pipeline.run import WORKER_PYTHON, check_worker_paths
from schemas.config import ConfigError, load_config
from schemas.sources_config import GitHubSource, SourcesConfig
from tests.conftest import SAMPLE_CONFIG, run_cli

DATAFLOW_SPELLINGS = [
    "DataflowRunner",
    "dataflow",
    "dataflowrunner",
    "Dataflow",
    "DATAFLOWRUNNER",
    "apache_beam.runners.dataflow.dataflow_runner.DataflowRunner",
    "apache_beam.runners.dataflow.test_dataflow_runner.TestDataflowRunner",  # a subclass runs on Dataflow too
]
OTHER_RUNNERS = [None, "DirectRunner", "direct", "directrunner", LOCAL_RUNNER, "PortableRunner", "portable"]


@pytest.mark.parametrize("runner", DATAFLOW_SPELLINGS)
def test_every_spelling_of_dataflow_resolves_to_it(runner):
    assert runs_on_dataflow(PipelineOptions(["--runner", runner]))


@pytest.mark.parametrize("runner", OTHER_RUNNERS)
def test_other_runners_do_not(runner):
    assert not runs_on_dataflow(PipelineOptions([] if runner is None else ["--runner", runner]))


@pytest.mark.parametrize("runner", ["DirectRunner", "direct", "directrunner", "Direct"])
def test_every_spelling_of_the_direct_runner_runs_locally(runner):
    assert make_pipeline_options(["--runner", runner]).get_all_options()["runner"] == LOCAL_RUNNER


def preflight_error(config, out: str, runner: str, launcher_python=WORKER_PYTHON) -> str:
    with pytest.raises(ConfigError) as e:
        check_worker_paths(config, out, PipelineOptions(["--runner", runner]), launcher_python=launcher_python)
    return str(e.value)


@pytest.mark.parametrize("runner", DATAFLOW_SPELLINGS[1:-1])
def test_each_spelling_meets_the_same_checks(runner, tmp_path):
    sample = load_config(SAMPLE_CONFIG)
    crawl = sample.replace(sources=SourcesConfig(github=GitHubSource()))
    for config, out, python in [
        (sample, "gs://b/datasets", WORKER_PYTHON),  # a local source
        (sample.replace(sources=SourcesConfig()), str(tmp_path), WORKER_PYTHON),  # --out on this disk
        (crawl, "gs://b/datasets", WORKER_PYTHON),  # a crawl without token_secret
        (sample.replace(sources=SourcesConfig()), "gs://b/datasets", (3, 12)),  # another Python
    ]:
        assert preflight_error(config, out, runner, python) == preflight_error(config, out, "DataflowRunner", python)


@pytest.mark.parametrize("runner", ["dataflow", "dataflowrunner", "DataflowRunner"])
def test_the_cli_stops_every_spelling_before_any_work(runner, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(
        "run",
        "--config",
        SAMPLE_CONFIG,
        "--out",
        str(out),
        "--runner",
        runner,
        "--project",
        "p",
        "--region",
        "us-central1",
        "--temp_location",
        "gs://b/tmp",
        check=False,
    )
    assert proc.returncode != 0
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: --runner DataflowRunner: sources.local reads repositories from this machine's disk")
    assert not out.exists() or not any(out.iterdir())
