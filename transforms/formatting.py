"""Format stage: a kept RepoFile becomes a training Document."""

from __future__ import annotations

from schemas.records import Document, RepoFile
from transforms.base import RecordFn


class ToDocumentFn(RecordFn):
    """RepoFile → Document with the file's metadata as columns."""

    stage = "format"

    def __call__(self, record: RepoFile) -> Document:
        return Document(
            id=record.id,
            kind="code",
            text=record.content,
            source=record.source,
            repo=record.repo,
            path=record.path,
            lang=record.lang,
            license=record.license,
            stars=record.stars,
        )
