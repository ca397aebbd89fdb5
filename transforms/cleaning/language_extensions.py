"""The paper's 28 languages and their file extensions: the one place an extension is tied to a language.

Kept free of Beam, so that a process that only needs the table (datatrove's side of
bench/bench_peer.py) does not load the runner. Extensions are compared lower-cased;
`.h` counts as C and `.m` as Matlab.
"""

from __future__ import annotations

import posixpath

# Paper footnote 4, in its order.
LANGUAGE_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "C": (".c", ".h"),
    "C++": (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++"),
    "CSS": (".css",),
    "C#": (".cs",),
    "Common Lisp": (".lisp", ".lsp", ".cl", ".asd"),
    "Dart": (".dart",),
    "Forth": (".fth", ".4th", ".forth", ".frt"),
    "Go": (".go",),
    "HTML": (".html", ".htm"),
    "Haskell": (".hs", ".lhs"),
    "Java": (".java",),
    "JavaScript": (".js", ".mjs", ".cjs", ".jsx"),
    "Julia": (".jl",),
    "Jupyter": (".ipynb",),
    "Kotlin": (".kt", ".kts"),
    "Lua": (".lua",),
    "Matlab": (".m",),
    "PHP": (".php",),
    "Perl": (".pl", ".pm"),
    "Python": (".py",),
    "R": (".r",),
    "Ruby": (".rb",),
    "Rust": (".rs",),
    "SQL": (".sql",),
    "Scala": (".scala",),
    "Shell": (".sh", ".bash", ".zsh"),
    "Swift": (".swift",),
    "TypeScript": (".ts", ".tsx"),
}
LANGUAGES = tuple(LANGUAGE_EXTENSIONS)
EXTENSIONS: dict[str, str] = {ext: lang for lang, exts in LANGUAGE_EXTENSIONS.items() for ext in exts}


def extension(path: str) -> str:
    """The lower-cased extension of a path's file name ("" for LICENSE, Makefile, .bashrc)."""
    return posixpath.splitext(posixpath.basename(path))[1].lower()


def language_of(path: str) -> str | None:
    """The language a path's extension names, or None outside the 28."""
    return EXTENSIONS.get(extension(path))
