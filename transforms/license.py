"""License stage: detect a repository's SPDX license, keep files of allow-listed ones.

Detection reads the texts a repository ships (LICENSE, COPYING, a README's license
section, SPDX-License-Identifier tags) and matches normalised key phrases of each
license's canonical text. Unknown or ambiguous texts give None, which the
allow-list rejects: the paper keeps permissive licenses only (§3.1).
"""

from __future__ import annotations

import re

from schemas.records import Rejected, RepoFile
from transforms.base import RecordFn

# Files at a repository's root that may carry its license, most authoritative first.
LICENSE_FILE_PATTERN = re.compile(r"^(licen[cs]e|copying|unlicense)([.-].*)?$", re.IGNORECASE)
README_FILE_PATTERN = re.compile(r"^readme([.].*)?$", re.IGNORECASE)
MAX_LICENSE_TEXT_CHARS = 200_000  # license files beyond this are truncated before matching

TITLE_CHARS = 300  # the part of a normalised license text that holds its title

_SPDX_TAG = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+-]+)")

# (SPDX id, phrases that must all appear, phrases that must not appear); first match wins,
# so the more specific texts come first. Phrases are lower-case, whitespace-normalised.
_SIGNATURES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("AGPL-3.0-only", ("gnu affero general public license", "version 3"), ()),
    ("LGPL-3.0-only", ("gnu lesser general public license", "version 3"), ()),
    ("LGPL-2.1-only", ("gnu lesser general public license", "version 2.1"), ()),
    ("GPL-3.0-only", ("gnu general public license", "version 3"), ()),
    ("GPL-2.0-only", ("gnu general public license", "version 2"), ()),
    ("MPL-2.0", ("mozilla public license", "2.0"), ()),
    ("Apache-2.0", ("apache license", "version 2.0"), ()),
    (
        "BSD-3-Clause",
        ("redistribution and use in source and binary forms", "neither the name"),
        (),
    ),
    (
        "BSD-2-Clause",
        ("redistribution and use in source and binary forms", "this list of conditions"),
        ("neither the name",),
    ),
    ("MIT", ("permission is hereby granted, free of charge, to any person obtaining a copy",), ()),
    ("ISC", ("permission to use, copy, modify, and/or distribute this software for any purpose",), ()),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",), ()),
)

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
_README_LICENSE = re.compile(
    r"(?:licen[cs]ed|released|distributed) under (?:the )?(.{1,60})|licen[cs]e:\s*(.{1,60})", re.IGNORECASE
)


def normalise(text: str) -> str:
    """Lower-case, drop comment/markup punctuation, collapse whitespace."""
    text = text[:MAX_LICENSE_TEXT_CHARS].lower()
    text = re.sub(r"[#*>/`_|=-]{1,}\s", " ", text)
    return " ".join(text.split())


def detect_license_text(text: str) -> str | None:
    """SPDX id of a license file's text, or None when no canonical text matches."""
    tag = _SPDX_TAG.search(text[:MAX_LICENSE_TEXT_CHARS])
    if tag:
        return tag.group(1)
    norm = normalise(text)
    head = norm[:TITLE_CHARS]
    for spdx, required, forbidden in _SIGNATURES:
        # GNU license texts mention their siblings in the body; their title decides.
        where = head if required[0].startswith("gnu ") else norm
        if all(p in where for p in required) and not any(p in norm for p in forbidden):
            return spdx
    return None


def detect_readme_license(text: str) -> str | None:
    """SPDX id named in a README ("Licensed under the MIT License", "License: MIT")."""
    names = sorted(_NAMES, key=len, reverse=True)
    for match in _README_LICENSE.finditer(text[:MAX_LICENSE_TEXT_CHARS]):
        phrase = (match.group(1) or match.group(2) or "").strip().lower()
        for name in names:
            if phrase.startswith(name) and not phrase[len(name) : len(name) + 1].isalnum():
                return _NAMES[name]
    return None


def detect_repo_license(files: dict[str, str]) -> str | None:
    """A repository's license from its root files {name: text}: license files, then READMEs."""
    names = sorted(files)
    for name in names:
        if LICENSE_FILE_PATTERN.match(name):
            found = detect_license_text(files[name])
            if found:
                return found
    for name in names:
        if README_FILE_PATTERN.match(name):
            found = detect_readme_license(files[name])
            if found:
                return found
    return None


def is_license_candidate(path: str) -> bool:
    """Whether a repository path is a root file that may name the license."""
    return "/" not in path and bool(LICENSE_FILE_PATTERN.match(path) or README_FILE_PATTERN.match(path))


class LicenseFilterFn(RecordFn):
    """Keep files whose repository license is on the allow-list."""

    stage = "license"

    def __init__(self, allow: tuple[str, ...]):
        self.allow = frozenset(allow)

    def __call__(self, record: RepoFile):
        if record.license in self.allow:
            return record
        detail = f"{record.license} is not on the allow-list" if record.license else "no license detected"
        return Rejected.of(record, self.stage, "license", detail)
