"""The README's two commands are the ones CI and users run."""

import os
import re

from tests.conftest import ROOT


def readme_commands() -> list[str]:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return re.findall(r"```bash\n(.+?)\n```", text)[:2]


def test_readme_opens_with_run_and_test_commands():
    run, test = readme_commands()
    assert "code-corpus run --config examples/sample.yaml" in run
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert readme_commands()[1] in ci.splitlines()
