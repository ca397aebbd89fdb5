"""Hostile notebooks: deep nesting, unpaired surrogates, pathological Markdown, many cells."""

from __future__ import annotations

import json
import time

import pytest

from schemas.records import Document, Rejected, RepoFile
from tests.hostile.hostile_inputs import code_cell, markdown_cell, notebook
from transforms.formatting.code_files import FormatCodeFn
from transforms.formatting.notebooks import ConvertNotebooksFn

BOUNDARIES = [1, 2, 3, 4, 5]
SECONDS = 20  # generous on a loaded 2-core machine; each case takes well under a second alone


def format_notebook(content: str) -> Document | Rejected:
    record = RepoFile(
        RepoFile.make_id("local", "r", "nb.ipynb", None), "local", "r", "nb.ipynb", None, "MIT", 3, len(content), content
    )
    convert = ConvertNotebooksFn()
    convert.setup()
    converted = convert(record.replace(lang="Jupyter"))
    if isinstance(converted, Rejected):
        return converted
    fn = FormatCodeFn(seed=0)
    fn.setup()
    return fn(converted, star_boundaries=BOUNDARIES)


@pytest.mark.parametrize(
    "name, content",
    [
        ("nested-arrays", "[" * 200_000 + "]" * 200_000),
        ("nested-objects", '{"a":' * 100_000 + "1" + "}" * 100_000),
        ("nested-metadata", notebook([code_cell("x = 1")], indent=None, deep=json.loads("[" * 900 + "]" * 900))),
        ("surrogate-in-source", notebook([code_cell("x = '\ud800'")])),
        ("surrogate-in-language", notebook([code_cell("x")], language_info={"name": "py\udc80"})),
        ("not-a-notebook", json.dumps({"nbformat": 4, "cells": "no"})),
    ],
)
def test_unreadable_notebooks_are_rejected_with_a_reason(name, content):
    out = format_notebook(content)
    assert isinstance(out, Rejected) and out.reason == "notebook-invalid", out
    out.detail.encode("utf-8")


@pytest.mark.slow
@pytest.mark.parametrize(
    "markdown",
    [
        ">" * 100_000 + " deep quote",
        "[" * 100_000,
        "*a " * 30_000,
        "[a](" * 25_000,
        "".join("  " * i + "- item\n" for i in range(400)),
        "|a" * 20_000 + "\n" + "|-" * 20_000 + "\n",
        "<div>" * 50_000,
    ],
    ids=["quotes", "brackets", "emphasis", "links", "nested-lists", "wide-table", "html"],
)
def test_pathological_markdown_formats_in_bounded_time(markdown):
    started = time.monotonic()
    out = format_notebook(notebook([markdown_cell(markdown), code_cell("x = 1", 1)]))
    assert time.monotonic() - started < SECONDS
    assert isinstance(out, Document) and "<cell>\nx = 1\n</cell>" in out.text


def test_a_notebook_of_many_cells_near_the_size_limit_is_formatted():
    content = notebook([code_cell(f"x{i} = {i}", i) for i in range(6_000)])
    assert 600_000 < len(content) < 1_000_000
    started = time.monotonic()
    out = format_notebook(content)
    assert time.monotonic() - started < SECONDS
    assert isinstance(out, Document) and out.text.count("<cell>") == 6_000
