"""Fuzzing the notebook converter (transforms/formatting/notebooks.py) through the notebooks and format stages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.records import Rejected, RepoFile
from tests.conftest import is_utf8
from tests.fuzz.fuzz_settings import FUZZ
from transforms.formatting import markup
from transforms.formatting.code_files import FormatCodeFn
from transforms.formatting.notebooks import ConvertNotebooksFn, make_markdown_parser, markdown_text

pytestmark = pytest.mark.slow  # fuzzing

markdown_bits = st.sampled_from(
    ["#", "*", "_", "`", "```", "[", "](", ")", "!", ">", "-", "1.", "|", "---", "<b>", "&amp;", "\n", "\n\n", "    ", " "]
)
# Cell text: anything, Markdown-heavy fragments, and JSON escapes of unpaired surrogates.
cell_text = st.one_of(
    st.text(),
    st.lists(st.one_of(markdown_bits, st.text(max_size=6)), max_size=30).map("".join),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),
)
cells = st.lists(st.tuples(st.sampled_from(["code", "markdown", "raw"]), cell_text), max_size=8)
languages = st.none() | st.text(max_size=12)


def notebook(cells: list[tuple[str, str]], language: str | None, version: int) -> str:
    """A version 4 (or 3) notebook; json.dumps writes a lone surrogate as a \\uXXXX escape."""
    if version == 3:
        v3 = [
            {"cell_type": t, **({"input": s, "outputs": [], "language": "python"} if t == "code" else {"source": s})}
            for t, s in cells
        ]
        metadata = {"language": language} if language else {}
        return json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": metadata, "worksheets": [{"cells": v3}]})
    code = {"outputs": [], "execution_count": None}
    body = [
        {"cell_type": t, "id": f"c{i}", "metadata": {}, "source": s, **(code if t == "code" else {})}
        for i, (t, s) in enumerate(cells)
    ]
    metadata = {"kernelspec": {"name": "k", "display_name": "k", "language": language}} if language is not None else {}
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": body})


@FUZZ
@given(cells, languages, st.sampled_from([3, 4]))
def test_notebooks_become_a_document_that_unwraps_or_a_reason(cells, language, version):
    content = notebook(cells, language, version)
    record = RepoFile(
        RepoFile.make_id("local", "r", "n.ipynb", None), "local", "r", "n.ipynb", None, "MIT", None, len(content), content
    )
    convert = ConvertNotebooksFn()
    convert.setup()
    out = convert(record.replace(lang="Jupyter"))
    if not isinstance(out, Rejected):
        fn = FormatCodeFn(seed=3)
        fn.setup()
        out = fn(out, star_boundaries=[1, 2, 3, 4, 5])
    decoded = [json.loads(json.dumps(s)) for _, s in cells]  # JSON joins an escaped surrogate pair into one character
    if not all(is_utf8(s) for s in decoded) or (language is not None and not is_utf8(json.loads(json.dumps(language)))):
        assert isinstance(out, Rejected) and out.reason == "notebook-invalid"
        return
    if isinstance(out, Rejected):
        assert out.reason == "notebook-empty"
        assert not any(t == "code" and s.strip() for (t, _), s in zip(cells, decoded))
        return
    out.text.encode("utf-8")
    body, _, _ = markup.unwrap("file", out.text)
    at = 0
    for (t, _), s in zip(cells, decoded):  # every code cell, verbatim and in order
        if t == "code" and s.strip():
            block = f"<cell>\n{s.rstrip(chr(10))}\n</cell>"
            at = body.index(block, at) + len(block)


@FUZZ
@given(st.lists(st.one_of(markdown_bits, st.text(max_size=10)), max_size=60).map("".join))
def test_markdown_to_text_never_fails(source):
    text = markdown_text(make_markdown_parser(), source)
    assert isinstance(text, str)


@FUZZ
@given(st.lists(st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=30).map(" ".join))
def test_a_plain_paragraph_is_its_own_text(paragraph):
    assert markdown_text(make_markdown_parser(), paragraph) == paragraph
