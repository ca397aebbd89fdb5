"""What each `code-corpus` command does, once its arguments are parsed (`pipeline.cli`).

Kept apart from the parser so that Beam and pyarrow are imported only when a command runs
(`code-corpus --version` and `--help` need neither), and the stages only for `run`.
"""

from __future__ import annotations

import os
import shutil
import sys

from infra import storage
from infra.verify import verify_version
from infra.version import VersionError, read_manifest
from pipeline.diff import diff_versions, render_diff
from pipeline.report import screenshot, write_report
from pipeline.show import Query, render_jsonl, render_text, sample
from pipeline.summary import counts_table, describe_manifest
from schemas.config import ConfigError, load_config


def run_command(args, extra: list[str]) -> int:
    """Carry out the parsed command; its exit code."""
    if args.command == "run":
        return _run(args, extra)
    if args.command == "diff":
        print_to_pipe(render_diff(diff_versions(args.a, args.b), all_ids=args.all_ids))
    elif args.command in ("infill", "generate"):
        from trainer.infill import run_command as infill_command  # torch loads only for these commands

        print_to_pipe(infill_command(args))
    elif args.command == "verify":
        verification = verify_version(args.version_dir, quick=args.quick)
        print_to_pipe(verification.render())
        return 0 if verification.ok else 1
    elif args.command == "bigquery-cost":
        print_to_pipe(bigquery_cost(load_config(args.config)))
    elif args.command == "show":
        print_to_pipe(show_command(args))
    elif args.command == "report":
        print_to_pipe(write_report(args.version_dir))
        if args.screenshot:
            print_to_pipe(screenshot(args.version_dir, args.screenshot))
    else:
        print_to_pipe(describe_manifest(read_manifest(args.version_dir)))
    return 0


def show_command(args) -> str:
    query = Query(args.kept, args.stage, args.reason, args.lang, args.repo, args.grep, args.n, args.seed)
    rows = sample(args.version_dir, query)
    return render_jsonl(rows) if args.format == "jsonl" else render_text(rows, query, shutil.get_terminal_size().columns)


def print_to_pipe(text: str) -> None:
    """Print, and stop quietly when the reader has closed the pipe (`inspect ... | head`), as Unix tools do."""
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the interpreter flushes stdout again at exit: point it at nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def bigquery_cost(config) -> str:
    """The dry run's table; nothing runs and nothing is billed."""
    from transforms.sources.bigquery.jobs import dry_run, make_client

    section = config.sources.bigquery
    if section is None:
        raise ConfigError("sources.bigquery: the config has no BigQuery source to estimate")
    return dry_run(make_client(section), section, config.read.max_file_bytes, config.read.max_notebook_bytes).table()


def _run(args, beam_args: list[str]) -> int:
    from pipeline.run import build_on_previous, parse_stages, run_stages  # every stage module loads here

    config = load_config(args.config)
    if args.previous:
        config = build_on_previous(config, args.previous, args.reuse_tokenizer)
    elif args.reuse_tokenizer:
        raise ConfigError("--reuse-tokenizer needs --previous (the version whose tokenizer to reuse)")
    stages = parse_stages(args.stages, config.stages)
    version_dir = run_stages(config, args.out, stages, beam_args, args.dataset_version, args.overwrite, args.previous)
    # The version is committed: a reader that stopped early (`run ... | head`) loses only the table.
    print_to_pipe(run_summary(read_manifest(version_dir), _as_given(version_dir, args.out)))
    return 0


def run_summary(manifest: dict, shown_path: str) -> str:
    """What `run` prints once the version is committed: where it is, and its counts table."""
    summary = f"\n{manifest['name']} {manifest['version']} written to {shown_path}\n"
    if manifest.get("counts"):
        summary += "\n" + counts_table(manifest["counts"], manifest.get("flow"))
    return summary


def _as_given(version_dir: str, out: str) -> str:
    """The version's path the way --out was written (relative stays relative)."""
    if storage.is_local(out) and not os.path.isabs(out):
        return os.path.relpath(version_dir)
    return version_dir


def describe_error(error: Exception) -> str:
    """The one line a failed command ends with."""
    if isinstance(error, (ConfigError, VersionError)):
        return f"error: {error}"
    return f"error: {type(error).__name__}: {error}"
