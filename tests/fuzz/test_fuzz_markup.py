"""Fuzzing the markup formatter (transforms/formatting/markup.py) and the code format stage built on it."""

from __future__ import annotations

import posixpath
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.records import Document, RepoFile
from tests.fuzz.fuzz_settings import FUZZ
from transforms.formatting import markup
from transforms.formatting.code_files import FormatCodeFn

pytestmark = pytest.mark.slow  # fuzzing

text = st.text(st.characters(codec="utf-8"))  # any text a record can hold (no lone surrogates)
keys = st.from_regex(r"[a-z][a-z_]{0,9}", fullmatch=True)
attributes = st.lists(st.tuples(keys, st.one_of(text, st.integers(-5, 10**6))), max_size=6)
kinds = st.sampled_from(["file", "q", "a", "c"])


@FUZZ
@given(kinds, text, attributes, attributes)
def test_unwrap_gives_back_the_body_and_attributes(kind, body, start, end):
    wrapped = markup.wrap(kind, body, start, end)
    got_body, got_start, got_end = markup.unwrap(kind, wrapped)
    assert got_body == body + ("" if body.endswith("\n") else "\n")
    assert got_start == [(k, markup.attribute_value(v)) for k, v in start]
    assert got_end == [(k, markup.attribute_value(v)) for k, v in end]


@FUZZ
@given(kinds, text, attributes, st.integers(0, 2**32))
def test_random_placement_puts_each_attribute_once_and_is_seeded(kind, body, attrs, seed):
    first = markup.wrap_random(kind, body, attrs, random.Random(seed))
    assert first == markup.wrap_random(kind, body, attrs, random.Random(seed))
    _, start, end = markup.unwrap(kind, first)
    assert sorted(start + end) == sorted((k, markup.attribute_value(v)) for k, v in attrs)


path_parts = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12)


@FUZZ
@given(
    st.lists(path_parts, min_size=1, max_size=4).map("/".join),
    text,
    st.none() | st.integers(0, 10**6),
    st.sampled_from(["github", "gitlab", "local"]),
)
def test_format_stage_wraps_any_file_so_that_it_unwraps_exactly(path, content, stars, source):
    record = RepoFile(RepoFile.make_id(source, "o/r", path, None), source, "o/r", path, None, "MIT", stars, len(content), content)
    fn = FormatCodeFn(seed=7)
    fn.setup()
    out = fn(record, star_boundaries=[1, 10, 100, 1000, 10000])
    if path.lower().endswith(".ipynb"):
        return  # a notebook's body is its cells (tests/fuzz/test_fuzz_notebooks.py)
    assert isinstance(out, Document)
    out.text.encode("utf-8")
    body, start, end = markup.unwrap("file", out.text)
    assert body == content + ("" if content.endswith("\n") else "\n")
    attrs = dict(start + end)
    assert len(attrs) == len(start + end) and attrs["filename"] == markup.attribute_value(posixpath.basename(path))
