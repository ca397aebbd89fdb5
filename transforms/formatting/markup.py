"""InCoder's metadata markup (paper §3.3, appendix A.3 Figure 6): the one place it is defined.

A document region is wrapped as

    <| file ext=.py source=github |>
    ...body...
    <|/ file filename=string_utils.py dstars=4 |>

Each attribute independently goes into the opening tag with probability 0.5, else into
the closing tag, and attributes are shuffled within each tag. Choices where Figure 6 is
ambiguous, fixed here:
  * the closing tag always ends with " |>" (Figure 6a prints "dstars=4>", which we read
    as a typesetting slip: every other tag in Figure 6 ends with " |>");
  * a tag with no attributes is "<| c |>" / "<|/ c |>" (as Figure 6c's comment tags);
  * the opening tag is followed by a newline; the body follows; the closing tag starts a
    new line (a body that lacks a final newline gets one);
  * attribute values never contain spaces or newlines: whitespace in them becomes "_".

So the opening tag is the text's first line and the closing tag its last line, whatever
the body holds (even tag-like lines), and `unwrap` gives back the body and attributes.
"""

from __future__ import annotations

import random
import re

_WHITESPACE = re.compile(r"\s+")


def attribute_value(value: object) -> str:
    return _WHITESPACE.sub("_", str(value).strip())


def render_attributes(attrs: list[tuple[str, object]]) -> str:
    return " ".join(f"{k}={attribute_value(v)}" for k, v in attrs)


def open_tag(kind: str, attrs: list[tuple[str, object]]) -> str:
    inner = render_attributes(attrs)
    return f"<| {kind} {inner} |>" if inner else f"<| {kind} |>"


def close_tag(kind: str, attrs: list[tuple[str, object]]) -> str:
    inner = render_attributes(attrs)
    return f"<|/ {kind} {inner} |>" if inner else f"<|/ {kind} |>"


def place_attributes(
    attrs: list[tuple[str, object]], rng: random.Random
) -> tuple[list[tuple[str, object]], list[tuple[str, object]]]:
    """Split attributes into (opening, closing), each with p=0.5, each list shuffled."""
    start, end = [], []
    for attr in attrs:
        (start if rng.random() < 0.5 else end).append(attr)
    rng.shuffle(start)
    rng.shuffle(end)
    return start, end


def wrap(kind: str, body: str, start: list[tuple[str, object]], end: list[tuple[str, object]]) -> str:
    """The body between an opening and a closing tag, laid out as the module docstring says."""
    newline = "" if body.endswith("\n") else "\n"
    return f"{open_tag(kind, start)}\n{body}{newline}{close_tag(kind, end)}"


def wrap_random(kind: str, body: str, attrs: list[tuple[str, object]], rng: random.Random) -> str:
    start, end = place_attributes(attrs, rng)
    return wrap(kind, body, start, end)


def parse_tag(line: str, kind: str, closing: bool) -> list[tuple[str, str]]:
    """The attributes of one tag line made by `open_tag`/`close_tag`, in their order."""
    head = f"<|/ {kind}" if closing else f"<| {kind}"
    if not (line.startswith(head) and line.endswith(" |>")):
        raise ValueError(f"not a {'closing' if closing else 'opening'} {kind!r} tag: {line[:200]!r}")
    inner = line[len(head) : -len(" |>")]
    if inner and not inner.startswith(" "):
        raise ValueError(f"not a {kind!r} tag: {line[:200]!r}")
    attrs = []
    for item in inner.split():
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"attribute without a value in {line[:200]!r}")
        attrs.append((key, value))
    return attrs


def unwrap(kind: str, text: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """Inverse of `wrap`: (body, opening attributes, closing attributes).

    The body comes back exactly, with the final newline that `wrap` ensures.
    """
    first, sep, rest = text.partition("\n")
    cut = rest.rfind("\n") + 1
    if not sep or not cut:
        raise ValueError(f"not a wrapped {kind!r} region: no body lines")
    return rest[:cut], parse_tag(first, kind, closing=False), parse_tag(rest[cut:], kind, closing=True)
