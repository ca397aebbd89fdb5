"""Jupyter notebooks as training text (paper §3.1 and appendix A.3, Figure 6b): stage "notebooks".

The stage runs right after the language stage, before decontamination, the filters and
dedup, and replaces each `.ipynb` file's JSON with its text and code, so every later
stage judges what the model will see: a 60 KB PNG output no longer makes a notebook a
`long-line` file, and two notebooks that differ only in outputs or execution counts
have the same dedup key. Other files pass through unchanged. A notebook nbformat cannot
read is rejected as `notebook-invalid`, one with no text or code as `notebook-empty`;
stats count the notebooks converted and the outputs left out.

A notebook's body is its cells in order, outputs left out:

    <text>
    This notebook demonstrates using scikit-learn to perform PCA.
    </text>
    <cell>
    %matplotlib inline
    </cell>

Markdown cells become `<text>` blocks with the Markdown formatting removed by parsing
them with markdown-it-py (CommonMark plus GitHub tables and strikethrough, as Jupyter
renders them) and keeping the text: emphasis, headings' `#`, list bullets and numbers,
quote markers, link targets and raw HTML tags go; link texts, image alt texts, inline
code and code blocks stay. Blocks are separated by a blank line, the items of a tight
list and the rows of a table by a newline (table cells by a space). Raw cells are text
too, kept as written. Code cells become `<cell>` blocks holding the source as written.
Trailing newlines of a block are dropped; cells holding only whitespace are skipped.

Notebooks are read with nbformat, converted to version 4 (so version 3 notebooks read
the same way) and validated against nbformat's schema; anything that fails raises
`NotebookError`. The kernel language comes from `metadata.kernelspec.language`, else
`metadata.language_info.name`, else the version 3 `metadata.language`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from infra.runtime import quiet_nbformat_validation_log
from schemas import stage_names
from schemas.records import Rejected, RepoFile
from transforms.record_fn import RecordFn
from transforms.sources.file_decoding import is_notebook_path

if TYPE_CHECKING:  # nbformat and markdown-it are imported where a notebook is read: a corpus without one never loads them
    import nbformat
    from markdown_it import MarkdownIt

NOTEBOOK_VERSION = 4
READ_VERSIONS = (3, 4)  # the formats of notebooks in the wild since 2013; older ones are rejected


class NotebookError(ValueError):
    """The file is not a notebook nbformat can read and validate."""


def read_notebook(content: str) -> nbformat.NotebookNode:
    """Parse, convert to version 4 and validate; raise NotebookError on any problem."""
    import nbformat
    from nbformat import reader, validator
    from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning

    try:
        data = reader.parse_json(content)
        version = data.get("nbformat") if isinstance(data, dict) else None
        if version not in READ_VERSIONS:
            raise NotebookError(f"nbformat version {version!r} is not one of {list(READ_VERSIONS)}")
        with warnings.catch_warnings():
            # nbformat fills in missing cell ids (and warns); ids are not part of the text.
            warnings.simplefilter("ignore", MissingIDFieldWarning)
            warnings.simplefilter("ignore", DuplicateCellId)
            nb = nbformat.convert(reader.reads(content), NOTEBOOK_VERSION)
            _, nb = validator.normalize(nb)
            nbformat.validate(nb)
        # A JSON escape such as \ud800 decodes to a lone surrogate, which no record or Parquet file can hold.
        for text in [cell.source for cell in nb.cells] + [kernel_language(nb) or ""]:
            text.encode("utf-8")
    except NotebookError:
        raise
    except Exception as e:  # noqa: BLE001 - nbformat's readers and converters are not hardened against
        # arbitrary JSON (they raise ValueError, KeyError, AttributeError, UnboundLocalError, RecursionError, ...);
        # whatever they raise, the file is not a notebook we can use, and the run must go on.
        detail = str(e).splitlines()[0] if str(e) else ""
        raise NotebookError(f"{type(e).__name__}: {detail}"[:300]) from None
    return nb


def kernel_language(nb: nbformat.NotebookNode) -> str | None:
    """The notebook's language, lower-cased (`python`, `r`, `julia`), or None when unknown."""
    meta = nb.metadata
    for value in (
        meta.get("kernelspec", {}).get("language"),
        meta.get("language_info", {}).get("name"),
        meta.get("language"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def make_markdown_parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def inline_text(children) -> str:
    """The text of an inline token's children: markup dropped, text and code kept."""
    out = []
    for child in children or ():
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append("\n")
        elif child.type == "image":
            out.append(inline_text(child.children))
    return "".join(out)


def markdown_text(md: MarkdownIt, source: str) -> str:
    """Markdown source → plain text, laid out as the module docstring says."""
    chunks: list[tuple[str, str]] = []  # (separator before, text)
    tight, row, row_glue = False, None, "\n\n"
    for token in md.parse(source):
        if token.type == "paragraph_open":
            tight = token.hidden  # markdown-it hides the paragraphs of tight list items
        elif token.type == "paragraph_close":
            tight = False
        elif token.type == "table_open":
            row_glue = "\n\n"
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            chunks.append((row_glue, " ".join(cell for cell in row if cell)))
            row, row_glue = None, "\n"
        elif token.type == "inline":
            text = inline_text(token.children)
            if row is not None:
                row.append(text)
            else:
                chunks.append(("\n" if tight else "\n\n", text))
        elif token.type in ("fence", "code_block"):
            chunks.append(("\n\n", token.content.rstrip("\n")))
    kept = [(glue, text) for glue, text in chunks if text.strip()]
    return "".join(glue + text for glue, text in kept)[len(kept[0][0]) :] if kept else ""


def notebook_body(nb: nbformat.NotebookNode, md: MarkdownIt) -> str:
    """The `<text>`/`<cell>` blocks of a version 4 notebook, joined by newlines."""
    blocks = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            tag, text = "cell", cell.source
        elif cell.cell_type == "markdown":
            tag, text = "text", markdown_text(md, cell.source)
        else:  # raw
            tag, text = "text", cell.source
        text = text.rstrip("\n")
        if text.strip():
            blocks.append(f"<{tag}>\n{text}\n</{tag}>")
    return "\n".join(blocks)


class ConvertNotebooksFn(RecordFn):
    """`.ipynb` RepoFile → the same RepoFile holding the notebook's text (outputs left out)."""

    stage = stage_names.NOTEBOOKS

    def setup(self) -> None:
        quiet_nbformat_validation_log()  # read_notebook's errors become Rejected records
        self.markdown = None  # made at the first notebook

    def __call__(self, record: RepoFile) -> RepoFile | Rejected:
        if not is_notebook_path(record.path):
            return record
        if self.markdown is None:
            self.markdown = make_markdown_parser()
        try:
            nb = read_notebook(record.content)
        except NotebookError as e:
            return Rejected.of(record, stage_names.NOTEBOOKS, "notebook-invalid", str(e))
        body = notebook_body(nb, self.markdown)
        if not body:
            return Rejected.of(record, stage_names.NOTEBOOKS, "notebook-empty", "no text or code cells")
        self.count("notebooks")
        self.count("outputs-dropped", sum(len(cell.get("outputs", ())) for cell in nb.cells))
        version = nb.metadata.get("orig_nbformat", nb.nbformat)
        return record.replace(content=body, nbformat=int(version), kernel=kernel_language(nb))
