"""Filters stage: the paper's quality filters for code files (§3.1, footnote 9).

A file is rejected, with the first reason that applies, when it

    empty            has nothing but whitespace
    auto-generated   contains a phrase that code and documentation generators write
                     (Protocol Buffer Compiler, Django, Epydoc, Pdoc, Sphinx, MkDocs,
                     MathJax; plus any configured extra phrases)
    long-line        has a line of more than `max_line_tokens` tokens (3000)
    avg-line-length  averages more than `max_avg_line_tokens` tokens a line (100)
    alnum-fraction   has less than `min_alnum_fraction` (40 %) of its characters
                     alphanumeric or underscore (whitespace counts as a character)

A *token* here is what a code lexer would split off: a run of letters, digits and
underscores, or any other single non-space character (`TOKEN`), so
`x_1 = f(a, b)` is 8 tokens. Lines are the file's lines (`str.splitlines`), blank
lines included. Every line has at most as many tokens as characters, so only
lines and files long enough to exceed a limit are tokenised.

The checks are a plain function of the text, `transforms.cleaning.quality_checks.check_file`;
this module wraps it as the stage.
"""

from __future__ import annotations

from schemas import stage_names
from schemas.config import FiltersConfig
from schemas.records import Rejected, RepoFile
from transforms.base import RecordFn
from transforms.cleaning.quality_checks import check_file


class QualityFilterFn(RecordFn):
    """Reject files that fail a quality filter, naming which one and by how much."""

    stage = stage_names.FILTERS

    def __init__(self, config: FiltersConfig):
        self.config = config

    def __call__(self, record: RepoFile):
        failed = check_file(record.content, self.config)
        if failed:
            return Rejected.of(record, self.stage, *failed)
        return record
