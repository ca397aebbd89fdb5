"""The command line itself: version, help, and where `--log-level` may stand."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from infra.release import PACKAGE_VERSION
from tests.conftest import ROOT, SAMPLE_CONFIG, run_cli


def test_version_prints_the_package_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert re.fullmatch(rf"code-corpus {re.escape(PACKAGE_VERSION)}(\+g[0-9a-f]{{12}})?\n", proc.stdout)


def test_run_help_says_other_flags_go_to_beam():
    shown = run_cli("run", "--help").stdout
    assert "[BEAM_OPTION ...]" in shown
    assert "Any other flag is a Beam pipeline option" in shown and "--runner DataflowRunner" in shown


def test_log_level_is_accepted_before_or_after_the_command(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsources:\n  local:\n    - path: nowhere\n")
    run = ["run", "--config", str(bad), "--out", str(tmp_path / "out")]
    for args in (["--log-level", "DEBUG", *run], [*run, "--log-level", "DEBUG"]):
        proc = run_cli(*args, check=False)
        assert proc.returncode == 2 and "sources.local[0].path" in proc.stderr
        assert "DEBUG pipeline.cli: failed" in proc.stderr  # the traceback, logged at DEBUG only
    quiet = run_cli(*run, "--log-level", "ERROR", check=False)
    assert "DEBUG" not in quiet.stderr and "sources.local[0].path" in quiet.stderr


def test_other_commands_refuse_unknown_flags():
    proc = run_cli("inspect", SAMPLE_CONFIG, "--direct_num_workers=2", check=False)
    assert proc.returncode == 2 and "unrecognized arguments: --direct_num_workers=2" in proc.stderr


def test_run_refuses_the_old_version_flag_and_names_dataset_version():
    for flag in (["--version", "v0001"], ["--version=v0001"], ["--version"]):
        proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", "unused", *flag, check=False)
        assert proc.returncode == 2, flag
        assert "--version is now --dataset-version" in proc.stderr, proc.stderr
        assert "`code-corpus --version` prints the program's version" in proc.stderr


def test_run_help_names_dataset_version_not_version():
    shown = run_cli("run", "--help").stdout
    assert "--dataset-version VNNNN" in shown and "--version" not in shown.replace("--dataset-version", "")


IMPORTS_OF_COMMANDS = """
import json, sys
from pipeline import cli
heavy = ("apache_beam", "pyarrow", "torch", "transforms", "tokenizer_training", "trainer")
def loaded():
    return sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy})
try:
    cli.main(["--version"])
except SystemExit:
    pass
after_version = loaded()
code = cli.main(["inspect", sys.argv[1]])  # no version there: fails, having read nothing
print(json.dumps({"after_version": after_version, "after_inspect": loaded(), "inspect_exit": code}))
"""


def test_version_loads_neither_beam_nor_a_stage_and_only_run_loads_the_stages(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF_COMMANDS, str(tmp_path)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["after_version"] == []
    assert found["inspect_exit"] == 1
    assert found["after_inspect"] == ["apache_beam", "pyarrow"]  # storage, but no stage, trainer or torch
