"""Beam pipeline options: everything the app does not know is passed to Beam, checked first.

Beam itself only warns about flags it cannot parse and fails late on an unknown
runner; here both fail before any work starts, with the flag named.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, _BeamArgumentParser
from apache_beam.runners import create_runner

from schemas.config import ConfigError


def _all_option_classes():
    seen, stack = {}, list(PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop()
        seen.setdefault(str(cls), cls)
        stack.extend(cls.__subclasses__())
    return seen.values()


def make_pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Validated PipelineOptions from the leftover command-line flags."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in _all_option_classes():
        cls._add_argparse_args(parser)
    try:
        _, unknown = parser.parse_known_args(beam_args)
    except SystemExit:
        raise ConfigError(f"invalid pipeline option in {beam_args}; see the message above") from None
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown}: not an option of this command nor a Beam pipeline option "
            "(e.g. --runner, --direct_running_mode, --direct_num_workers, --project, --temp_location)"
        )
    options = PipelineOptions(beam_args)
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    try:
        create_runner(runner)
    except (ValueError, ImportError) as e:
        raise ConfigError(f"--runner {runner!r} is not usable: {e}") from None
    return options
