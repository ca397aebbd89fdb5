"""What each `code-corpus` command does, once its arguments are parsed (`pipeline.cli`).

Kept apart from the parser so that the stages, Beam and pyarrow are imported only when a
command runs: `code-corpus --version` and `--help` need none of them.
"""

from __future__ import annotations

import os
import shutil
import sys

from infra import storage
from infra.verify import verify_version
from infra.version import read_manifest
from pipeline.diff import diff_versions, render_diff
from pipeline.report import screenshot, write_report
from pipeline.run import build_on_previous, parse_stages, run_stages
from pipeline.show import Query, render_jsonl, render_text, sample
from pipeline.summary import counts_table, describe_manifest
from schemas.config import ConfigError, load_config


def run_command(args, extra: list[str]) -> int:
    """Carry out the parsed command; its exit code."""
    if args.command == "run":
        return _run(args, extra)
    if args.command == "diff":
        print(render_diff(diff_versions(args.a, args.b), all_ids=args.all_ids))
    elif args.command in ("infill", "generate"):
        from trainer.infill import run_command as infill_command  # torch loads only for these commands

        print(infill_command(args))
    elif args.command == "verify":
        verification = verify_version(args.version_dir, quick=args.quick)
        print(verification.render())
        return 0 if verification.ok else 1
    elif args.command == "bigquery-cost":
        print(bigquery_cost(load_config(args.config)))
    elif args.command == "show":
        print_to_pipe(show_command(args))
    elif args.command == "report":
        print(write_report(args.version_dir))
        if args.screenshot:
            print(screenshot(args.version_dir, args.screenshot))
    else:
        print(describe_manifest(read_manifest(args.version_dir)))
    return 0


def show_command(args) -> str:
    query = Query(args.kept, args.stage, args.reason, args.lang, args.repo, args.grep, args.n, args.seed)
    rows = sample(args.version_dir, query)
    return render_jsonl(rows) if args.format == "jsonl" else render_text(rows, query, shutil.get_terminal_size().columns)


def print_to_pipe(text: str) -> None:
    """Print, and stop quietly when the reader has closed the pipe (`show ... | head`)."""
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
    config = load_config(args.config)
    if args.previous:
        config = build_on_previous(config, args.previous, args.reuse_tokenizer)
    elif args.reuse_tokenizer:
        raise ConfigError("--reuse-tokenizer needs --previous (the version whose tokenizer to reuse)")
    stages = parse_stages(args.stages, config.stages)
    version_dir = run_stages(config, args.out, stages, beam_args, args.version, args.overwrite, args.previous)
    manifest = read_manifest(version_dir)
    print(f"\n{manifest['name']} {manifest['version']} written to {_as_given(version_dir, args.out)}\n")
    if manifest.get("counts"):
        print(counts_table(manifest["counts"], manifest.get("flow")))
    return 0


def _as_given(version_dir: str, out: str) -> str:
    """The version's path the way --out was written (relative stays relative)."""
    if storage.is_local(out) and not os.path.isabs(out):
        return os.path.relpath(version_dir)
    return version_dir
