"""License detection on real license texts (the sample's files come from real projects)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import SAMPLE_REPOS
from transforms.license import LicenseFilterFn, detect_license_text, detect_readme_license, detect_repo_license
from schemas.records import Rejected, RepoFile


@pytest.mark.parametrize(
    "path, spdx",
    [
        ("textkit/LICENSE", "MIT"),
        ("webapp/LICENSE", "Apache-2.0"),
        ("mathlib/LICENSE.txt", "BSD-3-Clause"),
        ("cli-tools/LICENSE", "BSD-2-Clause"),
        ("gpl-app/COPYING", "GPL-3.0-only"),
    ],
)
def test_real_license_files(path, spdx):
    with open(os.path.join(SAMPLE_REPOS, path), encoding="utf-8") as f:
        assert detect_license_text(f.read()) == spdx


def test_readme_and_spdx_tag():
    assert detect_readme_license("## License\n\nReleased under the MIT License, see LICENSE.") == "MIT"
    assert detect_readme_license("Licensed under the Apache License, Version 2.0.") == "Apache-2.0"
    assert detect_license_text("# SPDX-License-Identifier: BSD-3-Clause\n") == "BSD-3-Clause"
    assert detect_repo_license({"README.md": "License: MIT\n"}) == "MIT"
    assert detect_repo_license({"README.md": "no word about it"}) is None


def test_filter_keeps_allowed_and_names_the_rest():
    fn = LicenseFilterFn(("MIT",))
    f = RepoFile("i", "local", "r", "a.py", None, "MIT", None, 1, "x")
    assert fn(f) is f
    out = fn(f.replace(license="GPL-3.0-only"))
    assert isinstance(out, Rejected) and out.reason == "license" and "GPL-3.0-only" in out.detail
    assert fn(f.replace(license=None)).detail == "no license detected"
