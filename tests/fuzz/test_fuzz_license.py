"""Fuzzing the license detector and the SPDX expression check (transforms/cleaning/license.py)."""

from __future__ import annotations

import importlib.resources
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.records import Rejected, RepoFile
from tests.fuzz.fuzz_settings import FUZZ
from transforms.cleaning.license import (
    NOASSERTION,
    LicenseFilterFn,
    canonical_texts,
    detect_license_text,
    detect_repo_license,
    expression_allowed,
)

pytestmark = pytest.mark.slow  # fuzzing

IDS = sorted(canonical_texts())
ALLOW = frozenset({"MIT", "Apache-2.0", "BSD-3-Clause"})
OTHER = ["GPL-3.0-only", "LicenseRef-X", "BSD-2-Clause"]


def canonical(spdx: str) -> str:
    return (importlib.resources.files("transforms.cleaning.license_texts") / f"{spdx}.txt").read_text(encoding="utf-8")


license_words = st.sampled_from(["MIT", "Apache", "License", "Copyright", "(c)", "SPDX-License-Identifier:", "AND", "OR"])
texts = st.one_of(
    st.text(),
    st.lists(st.one_of(license_words, st.text(max_size=8)), max_size=60).map(" ".join),
    st.builds(
        lambda spdx, cut, junk: canonical(spdx)[:cut] + junk, st.sampled_from(IDS), st.integers(0, 20_000), st.text(max_size=50)
    ),
)


@FUZZ
@given(texts)
def test_any_text_gives_none_noassertion_or_an_expression(text):
    found = detect_license_text(text)
    assert found is None or (isinstance(found, str) and found)
    if found not in (None, NOASSERTION):
        assert isinstance(expression_allowed(found, ALLOW), bool)


@FUZZ
@given(
    st.sampled_from(IDS),
    st.integers(30, 140),
    st.booleans(),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=40),
)
def test_canonical_texts_rewrapped_recased_and_attributed_are_still_detected(spdx, width, upper, holder):
    text = textwrap.fill(" ".join(canonical(spdx).split()), width)
    text = f"Copyright (c) 2024 {holder}\n\n{text}"
    assert detect_license_text(text.upper() if upper else text) == spdx


@st.composite
def expressions(draw, depth: int = 0):
    """(SPDX expression text, whether ALLOW permits it) for a random expression tree."""
    if depth >= 4 or draw(st.booleans()):
        spdx = draw(st.sampled_from(sorted(ALLOW) + OTHER))
        return spdx, spdx in ALLOW
    op = draw(st.sampled_from(["AND", "OR"]))
    parts = [draw(expressions(depth + 1)) for _ in range(draw(st.integers(2, 3)))]
    text = f" {op} ".join(f"({t})" if " " in t else t for t, _ in parts)
    value = all(v for _, v in parts) if op == "AND" else any(v for _, v in parts)
    return text, value


@FUZZ
@given(expressions())
def test_expression_allowed_evaluates_and_or_trees(expression):
    text, allowed = expression
    assert expression_allowed(text, ALLOW) is allowed


@FUZZ
@given(st.lists(st.sampled_from(["(", ")", " ", "AND", "OR", "MIT", "GPL-3.0-only"]), max_size=400).map("".join))
def test_malformed_or_deep_expressions_are_not_allowed_and_never_raise(text):
    result = expression_allowed(text, ALLOW)
    assert isinstance(result, bool)
    if text.count("(") != text.count(")"):
        assert result is False


names = st.sampled_from(["LICENSE", "LICENSE.md", "license.txt", "COPYING", "UNLICENSE", "README.md", "readme", "README.rst"])


@FUZZ
@given(st.dictionaries(names, texts, max_size=4), st.text(max_size=30))
def test_repository_license_is_decided_and_filtered_without_error(files, path):
    license = detect_repo_license(files)
    record = RepoFile(RepoFile.make_id("local", "r", path, None), "local", "r", path, None, license, None, 0, "")
    out = LicenseFilterFn(tuple(sorted(ALLOW)))(record)
    assert out is record or (isinstance(out, Rejected) and (out.stage, out.reason) == ("license", "license"))
