"""The language stage: the paper's 28 languages by extension, one table."""

from __future__ import annotations

import pytest

from schemas.config import ConfigError
from schemas.records import Rejected, RepoFile
from transforms.cleaning.language import LanguageFn
from transforms.cleaning.language_extensions import EXTENSIONS, LANGUAGES, extension, language_of

# Paper footnote 4, verbatim.
FOOTNOTE_4 = (
    "C, C++, CSS, C#, Common Lisp, Dart, Forth, Go, HTML, Haskell, Java, JavaScript, Julia, Jupyter, Kotlin, Lua, "
    "Matlab, PHP, Perl, Python, R, Ruby, Rust, SQL, Scala, Shell, Swift, TypeScript"
)


def make(path: str) -> RepoFile:
    return RepoFile("id-" + path, "local", "o/r", path, None, "MIT", 1, 1, "x = 1\n")


def test_the_table_is_footnote_4():
    assert list(LANGUAGES) == FOOTNOTE_4.split(", ")
    assert len(LANGUAGES) == 28
    assert set(EXTENSIONS.values()) == set(LANGUAGES)  # every language has an extension


@pytest.mark.parametrize(
    "path, lang",
    [
        ("src/app.py", "Python"),
        ("lib/Index.JS", "JavaScript"),
        ("include/vec.h", "C"),
        ("src/vec.hpp", "C++"),
        ("notebooks/eda.ipynb", "Jupyter"),
        ("analysis/model.R", "R"),
        ("scripts/release.sh", "Shell"),
        ("web/App.tsx", "TypeScript"),
        ("db/schema.sql", "SQL"),
        ("lisp/utils.lisp", "Common Lisp"),
        ("forth/words.fth", "Forth"),
    ],
)
def test_known_extensions(path, lang):
    assert language_of(path) == lang
    out = LanguageFn()(make(path))
    assert isinstance(out, RepoFile) and out.lang == lang


@pytest.mark.parametrize("path", ["LICENSE", "README.md", "Makefile", ".bashrc", "setup.cfg", "logo.png", "main.zig", "a.py.bak"])
def test_other_files_are_rejected(path):
    out = LanguageFn()(make(path))
    assert isinstance(out, Rejected) and out.stage == "language" and out.reason == "language"
    assert (extension(path) or "no extension") in out.detail


def test_a_subset_can_be_chosen_and_unknown_names_fail_fast():
    fn = LanguageFn(("Python",))
    assert fn(make("a.py")).lang == "Python"
    out = fn(make("a.js"))
    assert isinstance(out, Rejected) and "JavaScript (.js) is not selected" in out.detail
    with pytest.raises(ConfigError, match="language.languages.*Pyhton"):
        LanguageFn(("Pyhton",))


def test_counts_files_per_language():
    fn = LanguageFn()
    for path in ("a.py", "b.py", "c.go", "README"):
        fn(make(path))
    assert fn.stats == {"files:Python": 2, "files:Go": 1}
