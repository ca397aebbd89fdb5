"""`code-corpus`: build, inspect and use dataset versions.

    code-corpus run --config examples/sample.yaml --out datasets
    code-corpus run --config c.yaml --stages tokenizer..binarize --dataset-version v0001
    code-corpus run --config c.yaml --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
    code-corpus inspect datasets/sample/v0001
    code-corpus verify datasets/sample/v0001          (--quick: sizes and stored checksums, no content read)
    code-corpus show datasets/sample/v0001 --stage filters --reason long-line   (a sample of what a stage rejected)
    code-corpus bigquery-cost --config c.yaml   (a dry run: what the BigQuery source would scan and cost)
    code-corpus infill datasets/sample/v0001 --text "def add(a, b):\n<insert>\n"

Flags `run` does not know are Beam pipeline options; they are checked before any work.
`--log-level` may come before or after the command.
"""

from __future__ import annotations

import argparse
import logging
import sys

from infra.release import code_version
from infra.runtime import configure_process
from schemas.config import SAMPLE_TEMPERATURE, SAMPLE_TOP_P

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
RUN_EPILOG = """\
Any other flag is a Beam pipeline option and goes to Beam, checked before any work:
  --direct_running_mode=multi_processing --direct_num_workers=2   (more local cores)
  --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
  --sdk_container_image IMAGE --sdk_location=container             (Google Cloud Dataflow)
See README.md, "Running on more cores or on Dataflow"."""
# Libraries whose INFO lines say nothing a user acts on (Beam's per-type-hint and cache chatter);
# they still log their warnings, and everything at --log-level DEBUG. Dataflow's job links stay.
QUIET_BELOW_WARNING = ("apache_beam",)
KEEP_INFO = ("apache_beam.runners.dataflow",)
# Start-up notes each multi-processing Beam worker sends as warnings on every run; they say nothing
# about the data or the outcome. Other warnings from the workers (ours included) still show.
WORKER_LOG = "apache_beam.runners.portability.local_job_service"
WORKER_START_UP_NOTES = ("No semi_persistent_directory found", "Discarding unparseable args")


class _DropWorkerStartUpNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(note in message for note in WORKER_START_UP_NOTES)


class _PrintVersion(argparse.Action):
    """`--version`: the package version and commit, computed only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {code_version()}")
        parser.exit()


class _RenamedOption(argparse.Action):
    """An option that was renamed: refused at once (hidden from --help), naming its new spelling."""

    def __init__(self, option_strings, dest, renamed_to: str, **kwargs):
        super().__init__(option_strings, argparse.SUPPRESS, nargs="?", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.renamed_to = renamed_to

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            f"{option_string} is now {self.renamed_to} (the dataset version to write, e.g. {self.renamed_to} v0001); "
            f"`code-corpus --version` prints the program's version"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="code-corpus", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action=_PrintVersion, help="print the program's version and exit")
    parser.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    # Also accepted after the command; SUPPRESS keeps the value given before it when absent there.
    log_level = argparse.ArgumentParser(add_help=False)
    log_level.add_argument("--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS, help="default: INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub, log_level)
    add_version_parsers(sub, log_level)
    add_show_parser(sub, log_level)
    add_report_parsers(sub, log_level)
    add_checkpoint_parsers(sub, log_level)
    return parser


def add_run_parser(sub, log_level: argparse.ArgumentParser) -> None:
    run = sub.add_parser(
        "run",
        parents=[log_level],
        help="build a dataset version (or run later stages on one)",
        usage="%(prog)s --config CONFIG [options] [BEAM_OPTION ...]",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", required=True, help="YAML config file (see examples/sample.yaml)")
    run.add_argument("--out", default="datasets", help="root directory of dataset versions (default: datasets)")
    run.add_argument("--stages", help="stage range: 'corpus..binarize', 'tokenizer,binarize', 'train' or 'all'")
    run.add_argument(
        "--dataset-version",
        metavar="VNNNN",
        help="the dataset version to create (vNNNN), or the existing version later stages work on",
    )
    run.add_argument("--version", action=_RenamedOption, renamed_to="--dataset-version")
    run.add_argument("--overwrite", action="store_true", help="replace an existing version of the same name")
    run.add_argument(
        "--previous",
        help="an earlier version directory to build on: recorded as the parent, and files already in it are left out",
    )
    run.add_argument(
        "--reuse-tokenizer", action="store_true", help="with --previous: copy its tokenizer so old and new shards share ids"
    )


def add_version_parsers(sub, log_level: argparse.ArgumentParser) -> None:
    """The commands that read versions: inspect, diff, verify."""
    inspect = sub.add_parser("inspect", parents=[log_level], help="print a version's manifest and counts as tables")
    inspect.add_argument("version_dir", help="a dataset version directory, e.g. datasets/sample/v0001")

    diff = sub.add_parser(
        "diff", parents=[log_level], help="what changed between two versions: counts, documents, config, tokenizer"
    )
    diff.add_argument("a", help="the older version directory")
    diff.add_argument("b", help="the newer version directory")
    diff.add_argument("--all-ids", action="store_true", help="list every added/removed document id")

    verify = sub.add_parser(
        "verify", parents=[log_level], help="re-hash a version's files against its manifest; non-zero exit on any difference"
    )
    verify.add_argument("version_dir", help="a dataset version directory, e.g. datasets/sample/v0001")
    verify.add_argument(
        "--quick", action="store_true", help="compare sizes and the store's checksums from its listing; read no content"
    )


def add_report_parsers(sub, log_level: argparse.ArgumentParser) -> None:
    """report (a version's page) and bigquery-cost (a dry run of the BigQuery source)."""
    report = sub.add_parser("report", parents=[log_level], help="(re)write a version's report.html")
    report.add_argument("version_dir")
    report.add_argument("--screenshot", metavar="PNG", help="also render the page in headless Chromium to this PNG")

    cost = sub.add_parser(
        "bigquery-cost", parents=[log_level], help="dry-run the BigQuery source's query: bytes it scans, cost, the cap"
    )
    cost.add_argument("--config", required=True, help="YAML config file with a sources.bigquery section")


def add_checkpoint_parsers(sub, log_level: argparse.ArgumentParser) -> None:
    """infill and generate: a trained checkpoint's use."""
    for name, what in (
        ("infill", "fill the <insert> regions of a text with a trained checkpoint (paper §2.2)"),
        ("generate", "continue a text left to right with a trained checkpoint"),
    ):
        use = sub.add_parser(name, parents=[log_level], help=what)
        use.add_argument("checkpoint", help="a checkpoint directory, or a version directory (its newest checkpoint)")
        text = use.add_mutually_exclusive_group(required=True)
        marked = ", regions to fill marked <insert>" if name == "infill" else ""
        text.add_argument("--text", help=f"the input text{marked}")
        text.add_argument("--file", help="read the input text from this file")
        use.add_argument("--max-new-tokens", type=int, default=128, help="per region for infill (default: 128)")
        sampling = f"seeded sampling (default: {SAMPLE_TEMPERATURE}, paper §5); 0: greedy"
        use.add_argument("--temperature", type=float, default=SAMPLE_TEMPERATURE, help=sampling)
        nucleus = f"nucleus sampling mass (default: {SAMPLE_TOP_P}, paper §5)"
        use.add_argument("--top-p", type=float, default=SAMPLE_TOP_P, help=nucleus)
        use.add_argument("--ext", help="file extension, e.g. .py: the text starts with the tag <| file ext=.py |> (§3.3)")
        use.add_argument("--seed", type=int, default=0, help="sampling seed")
        use.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # --version and --help answer here, before any setting
    configure_process()  # before the first import of pyarrow or Beam (pipeline.commands)
    configure_logging(args.log_level)
    if args.command != "run" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        from pipeline import commands  # Beam loads here (the stages with `run`), so --version and --help answer at once

        return commands.run_command(args, extra)
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback (`run` logs the staging it removed)
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except Exception as e:  # every failure ends in one readable line, with the traceback at DEBUG
        from pipeline.commands import describe_error

        logging.getLogger(__name__).debug("failed", exc_info=True)
        print(describe_error(e), file=sys.stderr)
        return 2 if isinstance(e, ValueError) else 1


def add_show_parser(sub, log_level: argparse.ArgumentParser) -> None:
    show = sub.add_parser("show", parents=[log_level], help="print a seeded sample of a version's rejections or documents")
    show.add_argument("version_dir", help="a dataset version directory (local or gs://), e.g. datasets/sample/v0001")
    show.add_argument("--kept", action="store_true", help="sample the kept documents (default: the rejections)")
    show.add_argument("--stage", help="rejections of this stage, e.g. filters")
    show.add_argument("--reason", help="rejections for this reason, e.g. long-line")
    show.add_argument("--lang", help="records of this language, e.g. Python")
    show.add_argument("--repo", help="records of this repository, e.g. owner/name")
    show.add_argument("--grep", metavar="PATTERN", help="records whose text (a rejection's: its excerpt) matches this regex")
    show.add_argument("-n", type=int, default=5, help="how many records (default: 5)")
    show.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    show.add_argument("--format", choices=["text", "jsonl"], default="text", help="text (default) or one JSON object a line")


def configure_logging(level: str) -> None:
    """The root logger at `level`; chatty libraries at WARNING unless `level` is DEBUG."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    for name in QUIET_BELOW_WARNING:
        logging.getLogger(name).setLevel(
            logging.NOTSET if level == "DEBUG" else max(logging.WARNING, logging.getLevelName(level))
        )
    for name in KEEP_INFO:
        logging.getLogger(name).setLevel(level)
    worker_log = logging.getLogger(WORKER_LOG)
    if not any(isinstance(f, _DropWorkerStartUpNotes) for f in worker_log.filters):
        worker_log.addFilter(_DropWorkerStartUpNotes())


if __name__ == "__main__":
    sys.exit(main())
