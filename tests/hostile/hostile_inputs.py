"""Hostile inputs, built on the fly in a test's tmp directory.

Each builder returns what it made and what the readers must say about it. Links and
`..` paths aim at `outside`, a folder next to the work directory that the tests check
is never written to (nor read into a record).
"""

from __future__ import annotations

import json
import os

MIT = (
    "MIT License\n\nCopyright (c) 2024 Someone\n\n"
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated "
    'documentation files (the "Software"), to deal in the Software without restriction, including without limitation '
    "the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to "
    "permit persons to whom the Software is furnished to do so, subject to the following conditions:\n\n"
    "The above copyright notice and this permission notice shall be included in all copies or substantial portions of "
    "the Software.\n\n"
    'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE '
    "WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR "
    "COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR "
    "OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.\n"
)
TWO_GB = 2 * 2**30
SECRET = "TOP-SECRET-OUTSIDE-THE-WORK-DIRECTORY"


def sparse_file(path: str, size: int, prefix: bytes = b"x = '") -> None:
    """A file of `size` bytes on one line that takes (almost) no disk: a prefix, then a hole."""
    with open(path, "wb") as f:
        f.write(prefix)
        f.truncate(size)


def write(path: str, data: bytes | str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def make_outside(root: str) -> str:
    """A folder with a secret file, standing for everything outside the work directory."""
    outside = os.path.join(root, "outside")
    write(os.path.join(outside, "secret.py"), f"SECRET = {SECRET!r}\n")
    return outside


def notebook(cells: list[dict], indent: int | None = 1, **metadata) -> str:
    """A notebook's JSON; `indent=None` for deep metadata, whose indentation would grow with the square of its depth."""
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells}, indent=indent)


def code_cell(source: str, i: int = 0) -> dict:
    return {"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def markdown_cell(source: str, i: int = 0) -> dict:
    return {"cell_type": "markdown", "id": f"m{i}", "metadata": {}, "source": source}


# Per repository: the files to write, and the read/license/format outcome expected per path.
def hostile_repos(repos: str, outside: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Repositories under `repos`; returns {repo: {path: (stage, reason)}} for every rejected file."""
    expected: dict[str, dict[str, tuple[str, str]]] = {}

    links = os.path.join(repos, "links")
    write(os.path.join(links, "LICENSE"), MIT)
    write(os.path.join(links, "ok.py"), "def ok():\n    return 1\n")
    os.symlink(os.path.join(outside, "secret.py"), os.path.join(links, "secret_link.py"))
    os.symlink(outside, os.path.join(links, "outside_dir"))
    os.symlink("../../outside/secret.py", os.path.join(links, "relative_link.py"))
    sparse_file(os.path.join(links, "one_line_2gb.py"), TWO_GB)
    write(os.path.join(links, "latin1.py"), "s = 'café'\n".encode("latin-1"))
    write(os.path.join(links, "nul.py"), b"x = 1\x00\x00\n")
    write(os.fsdecode(os.path.join(os.fsencode(links), b"bad\xffname.py")), "x = 2\n")
    expected["links"] = {
        "secret_link.py": ("read", "symlink"),
        "outside_dir": ("read", "symlink"),
        "relative_link.py": ("read", "symlink"),
        "one_line_2gb.py": ("read", "too-large"),
        "latin1.py": ("read", "not-utf8"),
        "nul.py": ("read", "binary"),
        "bad\ufffdname.py": ("read", "not-utf8-path"),
        "LICENSE": ("language", "language"),
    }

    licenses = {
        "empty_license": b"",
        "huge_license": None,  # a sparse 2 GB LICENSE
        "garbage_license": (MIT + " ".join(f"term{i}" for i in range(80_000))).encode(),  # ~750 KB, mostly not license
        "nested_spdx": ("SPDX-License-Identifier: " + "(" * 5000 + "MIT" + ")" * 5000 + "\n").encode(),
    }
    for repo, text in licenses.items():
        path = os.path.join(repos, repo, "LICENSE")
        os.makedirs(os.path.dirname(path))
        sparse_file(path, TWO_GB, b"MIT License\n") if text is None else write(path, text)
        write(os.path.join(repos, repo, "main.py"), "print('hello')\n")
        expected[repo] = {"main.py": ("license", "license"), "LICENSE": ("license", "license")}
    expected["huge_license"]["LICENSE"] = ("read", "too-large")

    notebooks = os.path.join(repos, "notebooks")
    write(os.path.join(notebooks, "LICENSE"), MIT)
    write(os.path.join(notebooks, "deep.ipynb"), "[" * 200_000 + "]" * 200_000)
    write(os.path.join(notebooks, "deep_metadata.ipynb"), notebook([code_cell("x = 1")], deep=json.loads("[" * 900 + "]" * 900)))
    write(os.path.join(notebooks, "surrogate.ipynb"), notebook([code_cell("x = '\ud800'")]))
    write(os.path.join(notebooks, "quotes.ipynb"), notebook([markdown_cell(">" * 100_000 + " deep quote")]))
    write(os.path.join(notebooks, "many_cells.ipynb"), notebook([code_cell(f"x{i} = {i}", i) for i in range(6_000)]))
    # Notebooks are converted before the filters: the deep ones do not read, and markdown-it's
    # nesting limit leaves no text of the deep quote.
    expected["notebooks"] = {
        "deep.ipynb": ("notebooks", "notebook-invalid"),
        "deep_metadata.ipynb": ("notebooks", "notebook-invalid"),
        "quotes.ipynb": ("notebooks", "notebook-empty"),
        "surrogate.ipynb": ("notebooks", "notebook-invalid"),
        "LICENSE": ("language", "language"),
    }

    bad_name = os.fsdecode(os.path.join(os.fsencode(repos), b"bad\xfeRepo"))
    write(os.path.join(bad_name, "a.py"), "x = 1\n")
    expected["bad\ufffdRepo"] = {"": ("read", "not-utf8-path")}
    return expected


def billion_laughs_dump(folder: str, secret_path: str) -> set[tuple[str, int]]:
    """A Stack Exchange dump whose Posts.xml declares entity bombs and an external entity.

    Posts 10 and 11 and comment 20 are good; the other rows are hostile. Returns the
    (table, byte offset) of every hostile row.
    """
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    entities.append(f'<!ENTITY xxe SYSTEM "file://{secret_path}">')
    question = 'PostTypeId="1" Score="3" CreationDate="2020-01-01T00:00:00" Title="Q" Tags="&lt;python&gt;"'
    posts = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<!DOCTYPE posts [\n  {chr(10).join(entities)}\n]>\n<posts>\n"
        f'  <row Id="10" {question} Body="&lt;p&gt;How?&lt;/p&gt;" />\n'
        '  <row Id="11" PostTypeId="2" ParentId="10" Score="2" CreationDate="2020-01-02T00:00:00" Body="&lt;p&gt;So.&lt;/p&gt;" />\n'
        f'  <row Id="12" {question} Body="&lol9;" />\n'
        f'  <row Id="13" {question} Body="&xxe;" />\n'
        f'  <row Id="14" {question} Body="&#xD800;" />\n'
    ).encode() + f'  <row Id="15" {question} Body="caf\xe9 \xff" />\n</posts>\n'.encode("latin-1")
    comments = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<comments>\n'
        b'  <row Id="20" PostId="10" Score="0" CreationDate="2020-01-03T00:00:00" Text="fine" />\n'
        b'  <row Id="21" PostId="10" Score="0" CreationDate="2020-01-03T00:00:00" Text="\xc3\x28 broken" />\n'
        b"</comments>\n"
    )
    write(os.path.join(folder, "Posts.xml"), posts)
    write(os.path.join(folder, "Comments.xml"), comments)
    hostile = [("Posts.xml", posts, row) for row in (12, 13, 14, 15)] + [("Comments.xml", comments, 21)]
    return {(table, data.index(b'<row Id="%d"' % row)) for table, data, row in hostile}
