"""Jupyter notebooks as training text: Figure 6b, nbformat 3 and 4, Markdown removal, broken files."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbformat import v3, v4

from schemas.records import Document, Rejected, RepoFile
from tests.conftest import SAMPLE_REPOS
from transforms.formatting import markup, notebooks
from transforms.formatting.code_files import FormatCodeFn

FIGURE_6B_PREFIX = """<| file ext=.ipynb:python |>
<text>
This notebook demonstrates using scikit-learn to perform PCA.
</text>
<cell>
%matplotlib inline
</cell>
<cell>
import numpy as np
import matplotlib.pyplot as plt
from sklearn.decomposition import PCA
</cell>"""

PCA_CELLS = [
    ("markdown", "This notebook demonstrates using scikit-learn to perform PCA."),
    ("code", "%matplotlib inline"),
    ("code", "import numpy as np\nimport matplotlib.pyplot as plt\nfrom sklearn.decomposition import PCA"),
]
PYTHON_KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def notebook_v4(cells, metadata=PYTHON_KERNEL, outputs=()) -> str:
    """A notebook written with nbformat's version 4 API; code cells get `outputs`."""
    nb = v4.new_notebook(metadata=metadata)
    for kind, source in cells:
        if kind == "code":
            nb.cells.append(v4.new_code_cell(source, outputs=list(outputs), execution_count=1 if outputs else None))
        elif kind == "markdown":
            nb.cells.append(v4.new_markdown_cell(source))
        else:
            nb.cells.append(v4.new_raw_cell(source))
    return nbformat.writes(nb, version=4)


def notebook_v3(cells, language="python") -> str:
    """The same cells written with nbformat's version 3 API (worksheets, `input`, heading cells)."""
    v3_cells = []
    for kind, source in cells:
        if kind == "code":
            output = v3.new_output("stream", output_text="printed output\n")
            v3_cells.append(v3.new_code_cell(input=source, language=language, outputs=[output], prompt_number=1))
        elif kind == "heading":
            v3_cells.append(v3.new_heading_cell(source=source, level=2))
        else:
            v3_cells.append(v3.new_text_cell(kind, source=source))
    nb = v3.new_notebook(metadata={"language": language})
    nb.worksheets.append(v3.new_worksheet(cells=v3_cells))
    return nbformat.writes(nb, version=3)


def make_notebook_file(content: str, path="nb/analysis.ipynb", origin="github", stars=5) -> RepoFile:
    return RepoFile(
        id=RepoFile.make_id("local", "o/r", path, "c0"),
        source="local",
        repo="o/r",
        path=path,
        revision="c0",
        license="MIT",
        stars=stars,
        size=len(content),
        content=content,
        origin=origin,
    )


def convert(record: RepoFile) -> RepoFile | Rejected:
    fn = notebooks.ConvertNotebooksFn()
    fn.setup()
    return fn(record)


def format_notebook(content: str, seed=0, **kw) -> Document | Rejected:
    """The notebooks stage, then the format stage, as the pipeline runs them."""
    converted = convert(make_notebook_file(content, **kw))
    if isinstance(converted, Rejected):
        return converted
    fn = FormatCodeFn(seed)
    fn.setup()
    return fn(converted, star_boundaries=[1, 2, 3, 4, 5])


def body_of(doc: Document) -> str:
    return markup.unwrap("file", doc.text)[0]


@pytest.fixture(scope="module")
def md():
    return notebooks.make_markdown_parser()


def test_figure_6b_character_for_character():
    """Among run seeds, one puts only `ext` in the opening tag: the text then starts as the figure."""
    content = notebook_v4(PCA_CELLS)
    docs = [format_notebook(content, seed) for seed in range(200)]
    doc = next(d for d in docs if d.text.startswith("<| file ext=.ipynb:python |>\n"))
    assert doc.text.startswith(FIGURE_6B_PREFIX)
    rest = doc.text[len(FIGURE_6B_PREFIX) :]
    assert rest.startswith("\n<|/ file ") and rest.count("\n") == 1
    assert sorted(markup.parse_tag(rest[1:], "file", closing=True)) == [
        ("dstars", "4"),
        ("filename", "analysis.ipynb"),
        ("source", "github"),
    ]
    assert (doc.kind, doc.ext, doc.meta) == ("notebook", ".ipynb:python", (("nbformat", "4"),))


def test_outputs_are_left_out():
    outputs = [
        v4.new_output("stream", name="stdout", text="SECRET stream\n"),
        v4.new_output("execute_result", data={"text/plain": "SECRET result"}, execution_count=1),
        v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
        v4.new_output("error", ename="ValueError", evalue="SECRET", traceback=["SECRET tb"]),
    ]
    doc = format_notebook(notebook_v4(PCA_CELLS, outputs=outputs))
    assert "SECRET" not in doc.text and "iVBOR" not in doc.text and "<Figure>" not in doc.text
    assert body_of(doc) == FIGURE_6B_PREFIX.split("\n", 1)[1] + "\n"


def test_version_3_notebook_reads_like_version_4():
    cells = [("markdown", "Some **bold** text"), ("heading", "Results"), ("code", "x = 1\nprint(x)"), ("raw", "raw .. rst")]
    doc3 = format_notebook(notebook_v3(cells))
    expected = (
        "<text>\nSome bold text\n</text>\n<text>\nResults\n</text>\n"
        "<cell>\nx = 1\nprint(x)\n</cell>\n<text>\nraw .. rst\n</text>\n"
    )
    assert body_of(doc3) == expected
    assert (doc3.ext, doc3.meta) == (".ipynb:python", (("nbformat", "3"),))
    same_in_v4 = [
        ("markdown", "Some **bold** text"),
        ("markdown", "## Results"),
        ("code", "x = 1\nprint(x)"),
        ("raw", "raw .. rst"),
    ]
    assert body_of(format_notebook(notebook_v4(same_in_v4))) == expected


@pytest.mark.parametrize(
    "metadata, ext",
    [
        ({"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}}, ".ipynb:r"),
        ({"language_info": {"name": "julia"}}, ".ipynb:julia"),
        ({}, ".ipynb"),
    ],
)
def test_kernel_language_in_the_extension(metadata, ext):
    doc = format_notebook(notebook_v4([("code", "1 + 1")], metadata=metadata))
    assert doc.ext == ext and dict(sum(markup.unwrap("file", doc.text)[1:], []))["ext"] == ext


def test_the_sample_notebook_is_read_from_disk():
    with open(os.path.join(SAMPLE_REPOS, "textkit", "notebooks", "word_counts.ipynb"), encoding="utf-8") as f:
        doc = format_notebook(f.read(), path="notebooks/word_counts.ipynb")
    assert body_of(doc).startswith("<text>\nWord counts\n\nThis notebook demonstrates using textkit to count words")
    assert "{'the': 2" not in doc.text  # the saved execute_result


@pytest.mark.parametrize(
    "source, text",
    [
        ("# Title *with* emphasis", "Title with emphasis"),
        ("Some **bold**, _italic_ and ~~struck~~ words", "Some bold, italic and struck words"),
        ("Call `np.mean(x)` here", "Call np.mean(x) here"),
        ("See [the docs](https://example.org) and <https://x.org>", "See the docs and https://x.org"),
        ("![a *cat* picture](cat.png)", "a cat picture"),
        ("Fish &amp; chips &lt;3 \\*not emphasis\\*", "Fish & chips <3 *not emphasis*"),
        ("line one\nline two  \nline three", "line one\nline two\nline three"),
        ("First paragraph.\n\nSecond paragraph.", "First paragraph.\n\nSecond paragraph."),
        ("Steps:\n\n- one\n- two\n  * nested\n\n1. first\n2. second", "Steps:\none\ntwo\nnested\nfirst\nsecond"),
        ("> quoted *text*", "quoted text"),
        ("```python\nimport os\n```\n\n    indented = True", "import os\n\nindented = True"),
        ("| a | b |\n|---|---|\n| 1 | **2** |\n\nafter", "a b\n1 2\n\nafter"),
        ("<div align='center'>html block</div>\n\ntext <b>bold</b>", "text bold"),
        ("$E = mc^2$ stays", "$E = mc^2$ stays"),
        ("   \n\n", ""),
    ],
)
def test_markdown_formatting_is_removed(md, source, text):
    assert notebooks.markdown_text(md, source) == text


def real_notebook() -> str:
    return notebook_v4(PCA_CELLS, outputs=[v4.new_output("stream", name="stdout", text="ok\n")])


def v4_cells(*cells) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": list(cells)})


BROKEN = {
    "truncated JSON": real_notebook()[: len(real_notebook()) // 2],
    "not JSON": "print('a python file named .ipynb')\n",
    "JSON list": "[1, 2, 3]",
    "JSON string": '"notebook"',
    "empty file": "",
    "unsupported version": json.dumps({"nbformat": 9, "nbformat_minor": 0, "metadata": {}, "cells": []}),
    "version 1 (no nbformat key)": json.dumps({"cells": [{"cell_type": "text", "text": "hi"}]}),
    "no cells": json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {}}),
    "source is a number": v4_cells({"cell_type": "code", "metadata": {}, "source": 5, "outputs": [], "execution_count": None}),
    "unknown cell type": v4_cells({"cell_type": "widget", "metadata": {}, "source": "x"}),
    "v3 code cell without outputs": json.dumps(
        {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [{"cell_type": "code", "input": "x"}]}]}
    ),
    "nested too deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_notebooks_are_rejected(name):
    out = format_notebook(BROKEN[name])
    assert isinstance(out, Rejected), out
    assert (out.stage, out.reason, out.path, out.repo) == ("notebooks", "notebook-invalid", "nb/analysis.ipynb", "o/r")
    assert out.detail and len(out.detail) <= 300


def test_a_rejected_notebook_leaves_no_log_line(caplog):
    """nbformat logs the validation failure it is about to raise; the Rejected alone records it."""
    cell = {"cell_type": "code", "input": "x = 1", "outputs": [], "language": "python", "collapsed": False, "extra": 1}
    invalid_v3 = json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [cell]}]})
    with caplog.at_level("DEBUG"):
        out = format_notebook(invalid_v3)
    assert isinstance(out, Rejected) and out.reason == "notebook-invalid" and "'extra' was unexpected" in out.detail
    assert caplog.records == []


def test_a_notebook_with_nothing_in_it_is_rejected():
    out = format_notebook(notebook_v4([("code", "   "), ("markdown", "<br>")]))
    assert isinstance(out, Rejected) and (out.stage, out.reason) == ("notebooks", "notebook-empty")


NOTEBOOK_KEYS = ["nbformat", "nbformat_minor", "cells", "metadata", "worksheets", "cell_type", "source", "x"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NOTEBOOK_KEYS), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_gives_a_document_or_a_rejection(value):
    out = format_notebook(json.dumps(value))
    assert isinstance(out, (Document, Rejected))
    if isinstance(out, Rejected):
        assert out.reason in ("notebook-invalid", "notebook-empty")


code_sources = st.text(st.characters(blacklist_categories=["Cs"]), max_size=80).filter(lambda s: s.strip())


@settings(max_examples=100, deadline=None)
@given(st.lists(code_sources, min_size=1, max_size=6))
def test_code_cells_come_back_in_order(sources):
    body = body_of(format_notebook(notebook_v4([("code", s) for s in sources])))
    assert body == "".join(f"<cell>\n{s.rstrip(chr(10))}\n</cell>\n" for s in sources)
