"""License stage: detect a repository's SPDX license, keep files of allow-listed ones.

Detection reads the texts a repository ships at its root (LICENSE, COPYING, an
SPDX-License-Identifier tag, a README's license sentence). A license file is
matched against the canonical texts in `transforms/cleaning/license_texts/`: both sides are
normalised to lower-case words (copyright lines, URLs, punctuation and clause
numbers dropped) and compared as sets of word bigrams.

    containment(L)  share of license L's bigrams found in the file
    coverage        share of the file's bigrams explained by the licenses found

A license is found when its containment reaches MIN_CONTAINMENT; one that is
itself contained in another found license (BSD-2 inside BSD-3, MIT-0 inside MIT)
gives way to it. A file that holds several texts gives "A AND B"; a file whose
text is mostly not license text (coverage below MIN_COVERAGE), or matches nothing,
gives NOASSERTION, as GitHub's API reports such files. Anything not allow-listed is
rejected: the paper keeps permissive licenses only (§3.1).
"""

from __future__ import annotations

import functools
import importlib.resources
import re

from schemas import stage_names
from schemas.records import Rejected, RepoFile
from transforms.base import RecordFn

# Files at a repository's root that may carry its license, most authoritative first.
LICENSE_FILE_PATTERN = re.compile(r"^(licen[cs]e|copying|unlicense)([.-].*)?$", re.IGNORECASE)
README_FILE_PATTERN = re.compile(r"^readme([.].*)?$", re.IGNORECASE)
MAX_LICENSE_TEXT_CHARS = 200_000  # license files beyond this are truncated before matching

MIN_CONTAINMENT = 0.9  # above BSD-3's 0.86 containment in BSD-2 and MIT's 0.84 in MIT-0
MIN_COVERAGE = 0.8  # below this the file says more than the licenses found in it
NOASSERTION = "NOASSERTION"  # a license file whose terms are not (only) known licenses
MAX_EXPRESSION_DEPTH = 16  # nested parentheses in an SPDX expression; deeper ones are malformed

_SPDX_TAG = re.compile(r"SPDX-License-Identifier:[ \t]*([A-Za-z0-9.+() -]+?)[ \t]*(?:\*/|-->|$)", re.MULTILINE)
# A copyright statement line, not a wrapped line of terms such as "copyright notice and ...".
_COPYRIGHT_LINE = re.compile(
    r"^\W*(?:\(c\)|©|copyright\b(?![,;]|\s+(?:notice|holders?|owners?|and|or|law|license|statement|of|in|to|for)\b)).*$",
    re.MULTILINE,
)
_DROPPED = re.compile(r"all rights reserved|https?://\S+|www\.\S+")
_WORD = re.compile(r"[a-z0-9]+")
_EXPRESSION_TOKEN = re.compile(r"\(|\)|[^\s()]+")

# Short names used in README "License" sections and package metadata.
_NAMES = {
    "mit": "MIT",
    "mit license": "MIT",
    "apache-2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "gpl-3.0": "GPL-3.0-only",
    "gplv3": "GPL-3.0-only",
    "gpl-2.0": "GPL-2.0-only",
}
_README_NAMES = sorted(_NAMES, key=len, reverse=True)
_README_LICENSE = re.compile(
    r"(?:licen[cs]ed|released|distributed) under (?:the )?(.{1,60})|licen[cs]e:\s*(.{1,60})", re.IGNORECASE
)


def words(text: str) -> list[str]:
    """A license text as comparable words: lower-case, British spelling unified,
    copyright lines, URLs, punctuation, single letters and clause numbers dropped."""
    text = _COPYRIGHT_LINE.sub(" ", text[:MAX_LICENSE_TEXT_CHARS].lower())
    text = _DROPPED.sub(" ", text.replace("licence", "license"))
    return [w for w in _WORD.findall(text) if len(w) > 1 and not w.isdigit()]


def bigrams(text: str) -> frozenset[tuple[str, str]]:
    ws = words(text)
    return frozenset(zip(ws, ws[1:]))


@functools.cache
def canonical_texts() -> dict[str, frozenset]:
    """SPDX id → bigrams of its canonical text (built once per process)."""
    folder = importlib.resources.files("transforms.cleaning.license_texts")
    return {
        entry.name[: -len(".txt")]: bigrams(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".txt")
    }


@functools.cache
def _contained_in() -> dict[str, frozenset[str]]:
    """SPDX id → the other licenses whose canonical text contains this one's."""
    texts = canonical_texts()
    return {
        a: frozenset(b for b in texts if b != a and len(texts[a] & texts[b]) >= MIN_CONTAINMENT * len(texts[a])) for a in texts
    }


def match_license_text(found: frozenset) -> dict[str, float]:
    """SPDX id → containment in a file's bigrams, for every license at or above MIN_CONTAINMENT."""
    scores = {}
    for spdx, canonical in canonical_texts().items():
        score = len(canonical & found) / len(canonical)
        if score >= MIN_CONTAINMENT:
            scores[spdx] = score
    return scores


def detect_license_text(text: str) -> str | None:
    """SPDX expression of a license file, NOASSERTION if unrecognised, None if it holds no words.

    SPDX-License-Identifier tags anywhere in the file join the expression with AND,
    so a permissive text followed by a tagged proprietary notice is not permissive.
    """
    text = text[:MAX_LICENSE_TEXT_CHARS]
    tags = {t.strip() for t in _SPDX_TAG.findall(text)}
    found = bigrams(_SPDX_TAG.sub(" ", text))
    if not found:
        return _and(tags) if tags else None
    scores = match_license_text(found)
    contained_in = _contained_in()
    kept = [
        a for a in scores if not any(b in scores and (a not in contained_in[b] or scores[b] > scores[a]) for b in contained_in[a])
    ]
    explained = frozenset().union(*(canonical_texts()[a] for a in kept)) & found
    if not kept or len(explained) < MIN_COVERAGE * len(found):
        return NOASSERTION
    return _and(tags.union(kept))


def _and(parts: set[str]) -> str:
    return " AND ".join(sorted(f"({p})" if " OR " in p and not p.startswith("(") else p for p in parts))


def detect_readme_license(text: str) -> str | None:
    """SPDX id named in a README ("Licensed under the MIT License", "License: MIT")."""
    for match in _README_LICENSE.finditer(text[:MAX_LICENSE_TEXT_CHARS]):
        phrase = (match.group(1) or match.group(2) or "").strip().lower()
        for name in _README_NAMES:
            if phrase.startswith(name) and not phrase[len(name) : len(name) + 1].isalnum():
                return _NAMES[name]
    return None


def detect_repo_license(files: dict[str, str]) -> str | None:
    """A repository's license from its root files {name: text}.

    The first license file (by name) with a recognised text decides; a README is
    read only when there is no license file at all, so that a README's "MIT" never
    overrides a license file with other terms.
    """
    names = sorted(files)
    license_files = [n for n in names if LICENSE_FILE_PATTERN.match(n)]
    results = [detect_license_text(files[n]) for n in license_files]
    for found in results:
        if found and found != NOASSERTION:
            return found
    if any(results):
        return NOASSERTION
    for name in names:
        if README_FILE_PATTERN.match(name):
            found = detect_readme_license(files[name])
            if found:
                return found
    return None


def is_license_candidate(path: str) -> bool:
    """Whether a repository path is a root file that may name the license."""
    return "/" not in path and bool(LICENSE_FILE_PATTERN.match(path) or README_FILE_PATTERN.match(path))


def expression_allowed(expression: str, allow: frozenset[str]) -> bool:
    """Whether an SPDX expression (ids with AND, OR, parentheses) is within the allow-list, ids in any case.

    "A AND B" needs both allowed, "A OR B" either; a malformed expression (or one nested
    deeper than MAX_EXPRESSION_DEPTH, which a tag in a hostile file can be) is not allowed.
    """
    tokens = _EXPRESSION_TOKEN.findall(expression)
    allow = frozenset(spdx.lower() for spdx in allow)  # SPDX ids are case-insensitive

    def parse(i: int, depth: int) -> tuple[bool, int]:
        if depth > MAX_EXPRESSION_DEPTH:
            raise ValueError(expression)
        any_of, all_of, expect_id = False, True, True
        while i < len(tokens):
            token = tokens[i]
            if expect_id:
                if token == "(":
                    value, i = parse(i + 1, depth + 1)
                elif token in ("AND", "OR", ")"):
                    raise ValueError(expression)
                else:
                    value = token.lower() in allow
                all_of = all_of and value
                expect_id = False
            elif token == "AND":
                expect_id = True
            elif token == "OR":
                any_of, all_of, expect_id = any_of or all_of, True, True
            elif token == ")" and depth:
                return any_of or all_of, i
            else:
                raise ValueError(expression)
            i += 1
        if expect_id or depth:
            raise ValueError(expression)
        return any_of or all_of, i

    try:
        return bool(tokens) and parse(0, 0)[0]
    except ValueError:
        return False


class LicenseFilterFn(RecordFn):
    """Keep files whose repository license (an SPDX id or expression) is on the allow-list."""

    stage = stage_names.LICENSE

    def __init__(self, allow: tuple[str, ...]):
        self.allow = frozenset(allow)

    def __call__(self, record: RepoFile):
        if record.license and expression_allowed(record.license, self.allow):
            return record
        detail = f"{record.license} is not on the allow-list" if record.license else "no license detected"
        return Rejected.of(record, self.stage, "license", detail)
