"""The worker image and setup.py ship the same packages.

The Dockerfile copies the build context less `.dockerignore`, so a new package folder
reaches the image by itself; setup.py names its packages. A package one has and the
other lacks fails here: in the image a package setup.py does not install is not
importable by the workers, and setup.py cannot build without a file the image lacks.
"""

from __future__ import annotations

import os
from distutils.core import run_setup

import pytest

from tests.dataflow_rehearsal import ROOT, build_context, ignore_rules, image_files, is_ignored


@pytest.fixture(scope="module")
def setup_packages() -> list[str]:
    cwd = os.getcwd()
    os.chdir(ROOT)  # setup.py reads infra/release.py relative to its folder, as pip runs it
    try:
        return run_setup("setup.py", stop_after="init").packages
    finally:
        os.chdir(cwd)


def top_level_packages(files) -> set[str]:
    return {f.split("/")[0] for f in files if f.count("/") == 1 and f.endswith("/__init__.py")}


def test_the_image_holds_exactly_the_packages_setup_py_ships(setup_packages):
    in_image = image_files(ROOT)
    assert top_level_packages(in_image) == {p.split(".")[0] for p in setup_packages}
    for package in setup_packages:
        assert f"{package.replace('.', '/')}/__init__.py" in in_image, package
    assert {"setup.py", "README.md", "infra/release.py"} <= set(in_image)  # setup.py reads the version there


def test_the_image_holds_no_tests_environments_or_caches():
    in_image = image_files(ROOT)
    assert not [f for f in in_image if f.split("/")[0] in ("tests", "bench", "examples", "docs", ".git", ".venv")]
    assert not [f for f in in_image if "__pycache__" in f or f.endswith(".pyc")]


def test_a_new_package_folder_reaches_the_image_without_a_change_to_the_dockerfile(tmp_path):
    for name in ("Dockerfile", ".dockerignore", "setup.py", "README.md"):
        (tmp_path / name).write_bytes(open(os.path.join(ROOT, name), "rb").read())
    for package in ("pipeline", "newpackage", "tests"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    assert top_level_packages(image_files(str(tmp_path))) == {"pipeline", "newpackage"}


@pytest.mark.parametrize(
    "line, path, ignored",
    [
        ("tests", "tests/pipeline/test_cli.py", True),  # a folder covers what it holds
        ("tests", "transforms/tests.py", False),  # patterns start at the context's root
        ("**/__pycache__", "infra/__pycache__/a.pyc", True),
        ("**/__pycache__", "__pycache__/a.pyc", True),
        ("*.egg-info", "code_corpus.egg-info/PKG-INFO", True),
        ("*.egg-info", "infra/x.egg-info/PKG-INFO", False),  # * stops at a slash
        ("/docs", "docs/a.md", True),
    ],
)
def test_dockerignore_patterns_match_as_docker_matches_them(tmp_path, line, path, ignored):
    (tmp_path / ".dockerignore").write_text(f"# comment\n{line}\n")
    assert is_ignored(path, ignore_rules(str(tmp_path))) is ignored


def test_a_later_exception_brings_a_file_back(tmp_path):
    (tmp_path / ".dockerignore").write_text(".dockerignore\ndocs\n!docs/keep.md\n")
    for name in ("docs/keep.md", "docs/drop.md", "setup.py"):
        os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
        (tmp_path / name).write_text("x")
    assert build_context(str(tmp_path)) == ["docs/keep.md", "setup.py"]
