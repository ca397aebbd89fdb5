"""InCoder's attribute markup: tag layout, random placement, and its inverse."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.formatting import markup

KEYS = ("filename", "ext", "source", "dstars")


def test_tags_with_and_without_attributes():
    assert markup.open_tag("file", [("ext", ".py"), ("source", "github")]) == "<| file ext=.py source=github |>"
    assert markup.close_tag("file", [("filename", "a.py")]) == "<|/ file filename=a.py |>"
    assert markup.open_tag("c", []) == "<| c |>"
    assert markup.close_tag("c", []) == "<|/ c |>"


def test_whitespace_in_values_becomes_underscores():
    assert markup.attribute_value("  my file\tname.py \n") == "my_file_name.py"
    assert markup.open_tag("file", [("filename", "a b.py")]) == "<| file filename=a_b.py |>"


def test_wrap_puts_the_closing_tag_on_its_own_line():
    assert markup.wrap("file", "x = 1\n", [("ext", ".py")], []) == "<| file ext=.py |>\nx = 1\n<|/ file |>"
    # a body without a final newline gets one; that is the only change to the body
    assert markup.wrap("file", "x = 1", [], [("ext", ".py")]) == "<| file |>\nx = 1\n<|/ file ext=.py |>"
    assert markup.wrap("file", "", [], []) == "<| file |>\n\n<|/ file |>"


def test_unwrap_finds_the_tags_whatever_the_body_holds():
    body = "<|/ file filename=fake.py |>\n<| file ext=.js |>\nreal code\n"
    text = markup.wrap("file", body, [("ext", ".py")], [("filename", "a.py"), ("dstars", 2)])
    assert markup.unwrap("file", text) == (body, [("ext", ".py")], [("filename", "a.py"), ("dstars", "2")])


@pytest.mark.parametrize(
    "text",
    [
        "no tags at all",
        "<| file |>",  # no body line
        "<| file |>\nbody\n<|/ cell |>",  # wrong kind
        "<| files |>\nbody\n<|/ file |>",  # kind is a prefix of the tag word
        "<| file ext |>\nbody\n<|/ file |>",  # attribute without a value
        "<| file ext=.py|>\nbody\n<|/ file |>",  # no space before |>
    ],
)
def test_unwrap_rejects_text_that_is_not_wrapped(text):
    with pytest.raises(ValueError):
        markup.unwrap("file", text)


attr_values = st.text(min_size=1, max_size=20).filter(lambda v: markup.attribute_value(v))


@settings(max_examples=300, deadline=None)
@given(
    body=st.text(max_size=300),
    values=st.lists(attr_values, min_size=4, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_unwrap_inverts_wrap_random(body, values, seed):
    attrs = list(zip(KEYS, values))
    text = markup.wrap_random("file", body, attrs, random.Random(seed))
    got_body, start, end = markup.unwrap("file", text)
    assert got_body == (body if body.endswith("\n") else body + "\n")
    assert sorted(k for k, _ in start + end) == sorted(KEYS)  # each attribute exactly once
    assert dict(start + end) == {k: markup.attribute_value(v) for k, v in attrs}


def test_place_attributes_splits_each_attribute_half_and_half():
    rng = random.Random(7)
    at_start = dict.fromkeys(KEYS, 0)
    orders = set()
    n = 10_000
    for _ in range(n):
        start, _end = markup.place_attributes([(k, 1) for k in KEYS], rng)
        for k, _ in start:
            at_start[k] += 1
        orders.add(tuple(k for k, _ in start))
    assert all(abs(c / n - 0.5) <= 0.02 for c in at_start.values()), at_start
    # every subset in every order shows up: 1 + 4 + 12 + 24 + 24 arrangements of the opening tag
    assert len(orders) == 65
