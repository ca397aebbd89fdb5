"""The command line itself: version, help, and where `--log-level` may stand."""

from __future__ import annotations

import re

from infra.release import PACKAGE_VERSION
from tests.conftest import SAMPLE_CONFIG, run_cli


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
