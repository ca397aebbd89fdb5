"""Beam pipeline options: everything the app does not know is passed to Beam, checked first.

Beam itself only warns about flags it cannot parse and fails late on an unknown
runner; here both fail before any work starts, with the flag named.

The local runner is Beam's FnApiRunner, the engine behind the DirectRunner that honours
`--direct_running_mode` (in_memory, multi_threading, multi_processing) and
`--direct_num_workers`. Beam's DirectRunner first tries to download and start its Prism
runner from the internet, which ignores those flags and hangs or fails on machines
without internet access; `LocalRunner` goes straight to the FnApiRunner.
"""

from __future__ import annotations

import re

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners import create_runner
from apache_beam.runners.direct.direct_runner import DirectRunner
from apache_beam.runners.runner import PipelineRunner

from infra.runtime import beam_option_parser, return_freed_memory, run_on_fn_api_runner
from schemas.config import ConfigError


def make_pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Validated PipelineOptions from the leftover command-line flags."""
    try:
        _, unknown = beam_option_parser().parse_known_args(beam_args)
    except SystemExit:
        raise ConfigError(f"invalid pipeline option in {beam_args}; see the message above") from None
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown}: not an option of this command nor a Beam pipeline option "
            "(e.g. --runner, --direct_running_mode, --direct_num_workers, --project, --temp_location)"
        )
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if standard.runner is None or runner_class(standard.runner) is DirectRunner:  # any spelling of it
        standard.runner = LOCAL_RUNNER
    return options


# Where versions can be written: a local folder, or Cloud Storage, whose lock is an object
# created with ifGenerationMatch=0. Beam reaches other stores (s3://, azfs://, hf://), but
# none of them gets the lock, the staged commit or the checks a version needs.
OUTPUT_SCHEMES = ("gs",)


def check_output_store(out_root: str) -> None:
    """Refuse, before any work, an --out on a store versions cannot be written to end to end."""
    scheme, found, _ = out_root.partition("://")
    if found and scheme not in OUTPUT_SCHEMES:
        local = f"; for a local folder write the path without {scheme}://" if scheme == "file" else ""
        raise ConfigError(f"--out: {scheme}:// is not supported for writing versions (a local folder or gs://bucket/path){local}")


DATAFLOW_RUNNER = "apache_beam.runners.dataflow.dataflow_runner.DataflowRunner"


def runner_class(runner) -> type:
    """The class Beam runs `--runner` with: it accepts a name in any case, with or without
    `Runner` (dataflow, DataflowRunner, dataflowrunner), a dotted class path, or an instance."""
    if isinstance(runner, PipelineRunner):
        return type(runner)
    try:
        return type(create_runner(runner))
    except (ValueError, ImportError) as e:
        raise ConfigError(f"--runner {runner!r} is not usable: {e}") from None


def runs_on_dataflow(options: PipelineOptions) -> bool:
    """Whether Beam would submit this pipeline to Dataflow (DataflowRunner or a subclass of it)."""
    runner = options.view_as(StandardOptions).runner
    return runner is not None and any(_qualified_name(c) == DATAFLOW_RUNNER for c in runner_class(runner).__mro__)


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


LOCAL_RUNNER = "pipeline.options.LocalRunner"

# Pipeline options never written beside the data: every option whose name says it holds a
# credential, and Beam's options that hold one under another name (an Azure connection
# string carries the account key; gbek is the key of encrypted GroupByKeys; the profiler's
# environment variables may carry its agent's key).
CREDENTIAL_WORDS = re.compile(r"key|secret|token|passw|credential", re.IGNORECASE)
CREDENTIAL_OPTIONS = frozenset({"azure_connection_string", "gbek", "profiler_extra_env_vars"})


def recordable_options(options: PipelineOptions) -> tuple[dict, list[str]]:
    """(the options set away from their defaults that may be recorded, the names of those withheld)."""
    chosen = options.get_all_options(drop_default=True)
    withheld = sorted(name for name in chosen if CREDENTIAL_WORDS.search(name) or name in CREDENTIAL_OPTIONS)
    return {name: value for name, value in chosen.items() if name not in withheld}, withheld


class LocalRunner(PipelineRunner):
    """The DirectRunner's FnApiRunner path, without the attempt to fetch Prism."""

    def run_pipeline(self, pipeline, options):
        # In multi_processing mode this process is the runner: every element between two
        # stages arrives in a gRPC message, and glibc would otherwise keep those buffers.
        return_freed_memory()
        return run_on_fn_api_runner(pipeline, options)
