"""Email scrubbing: addresses replaced, code patterns with `@` left alone."""

from __future__ import annotations

import glob
import importlib
import os
import re

import pytest

from schemas.records import RepoFile
from tests.conftest import SAMPLE_REPOS
from transforms.scrub import REPLACEMENT, ScrubEmailsFn, scrub_emails

DECORATOR = re.compile(r"^\s*@\w")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("jane.doe@textkit-dev.org", REPLACEMENT),
        ('"Jane" <jane.doe@textkit-dev.org>', f'"Jane" <{REPLACEMENT}>'),
        ("releases+announce@lists.textkit-dev.org", REPLACEMENT),
        ("mailto:jane@example.org", f"mailto:{REPLACEMENT}"),
        ("Contact: OPS@EXAMPLE.CO.UK.", f"Contact: {REPLACEMENT}."),
        ("a@b.io,c@d.de", f"{REPLACEMENT},{REPLACEMENT}"),
        ("# Author: Łukasz <l.nowak@uni.edu.pl>", f"# Author: Łukasz <{REPLACEMENT}>"),
    ],
)
def test_addresses_are_replaced(text, expected):
    assert scrub_emails(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "@app.route('/items')\ndef items(): ...",  # decorator
        "@Override\npublic String toString()",  # Java annotation
        "@media (max-width: 600px) { body { margin: 0 } }",  # CSS at-rule
        "y = a@b.T",  # matrix product, transposed
        "z = x@w.transpose() + q@k.mT",  # products with method and attribute
        "out = h@self.weight.to(device)",
        '"lodash@4.17.21", "@babel/core@7.24.0"',  # package pins
        "FROM node@sha256:abc123",
        "my @array = (1, 2); print scalar(@array);",  # Perl arrays
        "git clone git@github.com:owner/repo.git",  # scp-style ssh remote: an account on a host
        "url = 'ssh://git@gitlab.com/group/project.git'",
        "proxy = 'https://user@proxy.example.com:8080/'",
        "user@localhost",
        REPLACEMENT,  # already scrubbed
        "x" * 70 + "@example.com",  # local part longer than 64 characters
    ],
)
def test_code_patterns_are_left_alone(text):
    assert scrub_emails(text) == (text, 0)


def test_sample_contact_file():
    with open(os.path.join(SAMPLE_REPOS, "textkit/textkit/contact.py"), encoding="utf-8") as f:
        text = f.read()
    scrubbed, n = scrub_emails(text)
    assert n == 4 and "textkit-dev.org" not in scrubbed and scrubbed.count(REPLACEMENT) == 4
    assert scrubbed.replace(REPLACEMENT, "") == text.replace("jane.doe@textkit-dev.org", "").replace(
        "ravi.kumar@mail.textkit-dev.org", ""
    ).replace("releases+announce@lists.textkit-dev.org", "")


def test_real_decorator_heavy_code_keeps_every_decorator():
    """Installed code full of decorators and `@` operators: every `@` line survives as it was."""
    beam_transforms = os.path.dirname(importlib.import_module("apache_beam.transforms.core").__file__)
    paths = [importlib.import_module(m).__file__ for m in ("functools", "dataclasses", "hypothesis.core")]
    paths += sorted(glob.glob(os.path.join(beam_transforms, "*.py")))
    decorators = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        at_lines = [line for line in text.splitlines() if DECORATOR.match(line)]
        decorators += len(at_lines)
        scrubbed, _ = scrub_emails(text)
        assert [line for line in scrubbed.splitlines() if DECORATOR.match(line)] == at_lines, path
    assert decorators > 200


def test_stage_counts_replacements_and_changed_files():
    fn = ScrubEmailsFn()
    a = RepoFile("a", "local", "o/r", "a.py", None, "MIT", 1, 1, "# by ann@example.org and bob@example.org\n")
    b = RepoFile("b", "local", "o/r", "b.py", None, "MIT", 1, 1, "@property\ndef x(self): ...\n")
    assert fn(a).content == f"# by {REPLACEMENT} and {REPLACEMENT}\n"
    assert fn(b) is b
    assert fn.stats == {"emails-replaced": 2, "files-changed": 1}
    assert ScrubEmailsFn("nobody@invalid.example")(a).content.count("nobody@invalid.example") == 2
