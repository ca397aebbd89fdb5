"""Language stage: keep files of the paper's 28 languages, named by file extension.

InCoder included "all code from a list of 28 languages (determined by file
extension)" (§3.1, footnote 4). `EXTENSIONS` (`transforms.cleaning.language_extensions`) is
that list, the one place where an extension is tied to a language; the stage sets
`RepoFile.lang` from it and rejects any other file (LICENSE, README.md, images, ...)
with reason "language". Extensions are compared lower-cased; `.h` counts as C and `.m`
as Matlab.
"""

from __future__ import annotations

from schemas import stage_names
from schemas.config import ConfigError
from schemas.records import Rejected, RepoFile
from transforms.base import RecordFn
from transforms.cleaning.language_extensions import EXTENSIONS, LANGUAGES, extension


class LanguageFn(RecordFn):
    """Set `lang` on files of the chosen languages; reject every other file."""

    stage = stage_names.LANGUAGE

    def __init__(self, languages: tuple[str, ...] = ()):
        unknown = sorted(set(languages) - set(LANGUAGES))
        if unknown:
            raise ConfigError(f"language.languages: unknown language(s) {unknown}; choose from {list(LANGUAGES)}")
        self.languages = frozenset(languages or LANGUAGES)

    def __call__(self, record: RepoFile):
        ext = extension(record.path)
        lang = EXTENSIONS.get(ext)
        if lang is None or lang not in self.languages:
            detail = f"{lang} ({ext}) is not selected" if lang else f"{ext or 'no extension'}: not one of the 28 languages"
            return Rejected.of(record, self.stage, "language", detail)
        self.count(f"files:{lang}")
        return record.replace(lang=lang)
