"""Alphanumeric tokens: the fast path finds exactly the regex's tokens."""

from __future__ import annotations

import pathlib
import re

import apache_beam
import pytest

from transforms.dedup.tokens import alnum_tokens

EDGES = [
    "",
    "x=foo(1) # é",
    "café—naïve “quoted” ¹²³ e\u0301 日本語のテキスト、です。",
    "a\u00a0b\u2028c\u3000d",  # non-ASCII spaces separate tokens
    "lone \ud800 surrogate_ok",
    "emoji🙂inside_word x\u200by",
]


def non_ascii_sources(limit: int = 20) -> list[str]:
    """Real Python files with non-ASCII text, from an installed package."""
    root = pathlib.Path(apache_beam.__file__).parent
    texts = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if not text.isascii():
            texts.append(text)
        if len(texts) == limit:
            break
    return texts


@pytest.mark.parametrize("text", EDGES + non_ascii_sources())
def test_alnum_tokens_are_the_regex_word_runs(text):
    expected = [t.encode("utf-8") for t in re.findall(r"\w+", text)]
    assert alnum_tokens(text).split() == expected
