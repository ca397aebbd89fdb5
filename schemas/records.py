"""The records that flow between pipeline stages (DESIGN.md, "Records").

Plain dataclasses: Beam pickles them between workers, tests build them directly,
and `to_row()` gives the dict that matches their Arrow schema in `schemas.arrow`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Any, ClassVar


def record_id(*parts: str | None) -> str:
    """A stable id: the first 24 hex digits of SHA-256 over the NUL-joined parts."""
    joined = "\0".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:24]  # stable even for broken names


@dataclasses.dataclass(frozen=True)
class RepoFile:
    """One file of one repository, as a source read it."""

    id: str
    source: str  # github | gitlab | bigquery | local
    repo: str
    path: str
    revision: str | None  # commit id, or None for a plain folder
    license: str | None  # SPDX id, None when unknown
    stars: int | None
    size: int  # bytes of the raw file
    content: str
    lang: str | None = None  # set by the language stage
    origin: str | None = None  # where the repository was hosted (github/gitlab) when known
    # Set by the notebooks stage, which replaces a notebook's JSON with its text and code:
    nbformat: int | None = None  # the format version the notebook was written in (None: not a converted notebook)
    kernel: str | None = None  # the notebook's language (`python`), None when it names none

    @staticmethod
    def make_id(source: str, repo: str, path: str, revision: str | None) -> str:
        return record_id(source, repo, path, revision)

    def replace(self, **changes: Any) -> "RepoFile":
        return dataclasses.replace(self, **changes)

    def to_row(self) -> dict:
        return flat_row(self)

    def fields(self) -> tuple:
        """Its values in field order: how it crosses a shuffle or goes into a spill file. Beam's
        coder writes a tuple of primitives itself; a dataclass it pickles, several times slower,
        in the worker and again in the runner."""
        return tuple(self.__dict__.values())

    @classmethod
    def of_fields(cls, values: tuple) -> "RepoFile":
        return cls(*values)


@dataclasses.dataclass(frozen=True)
class Document:
    """A formatted training document: `text` is what the tokenizer sees.

    The metadata fields stay as columns so users can filter without parsing text.
    """

    id: str
    kind: str  # code | notebook | stackoverflow
    text: str
    source: str
    repo: str | None = None
    path: str | None = None
    lang: str | None = None
    license: str | None = None
    stars: int | None = None
    star_bucket: int | None = None
    tags: tuple[str, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()  # extra key/value pairs, sorted by key
    ext: str | None = None  # the `ext` markup attribute (".py", ".ipynb:python")
    origin: str | None = None  # the `source` markup attribute: where the repository is hosted (github/gitlab)

    def to_row(self) -> dict:
        row = flat_row(self)
        row["tags"] = list(self.tags)
        row["meta"] = [list(kv) for kv in self.meta]
        return row

    @classmethod
    def from_row(cls, row: dict) -> "Document":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in fields}
        values["tags"] = tuple(values.get("tags") or ())
        values["meta"] = tuple(tuple(kv) for kv in (values.get("meta") or ()))
        return cls(**values)


# The most of a rejected record's text a rejection carries (`output.rejected_excerpt_bytes` cuts it
# further where the rejections are written): it bounds what a rejection adds to memory and shuffles.
MAX_EXCERPT_BYTES = 4096


def excerpt_of(text: str | None, limit: int) -> str:
    """The first `limit` bytes of `text` as UTF-8, cut back to a whole character.

    Only the first `limit` characters are encoded (never more bytes than that), so a large
    file costs no more than a small one; a lone surrogate becomes "?" (Parquet needs UTF-8).
    """
    if not text or limit <= 0:
        return ""
    return text[:limit].encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


@dataclasses.dataclass(frozen=True)
class Rejected:
    """Why one input did not reach the output. read = kept + rejected, per stage."""

    id: str
    stage: str
    reason: str
    detail: str = ""
    source: str | None = None
    repo: str | None = None
    path: str | None = None
    excerpt: str = ""  # the start of the record's text, to look at (at most MAX_EXCERPT_BYTES)
    size: int | None = None  # bytes of the record's file or text, None when it had none
    lang: str | None = None  # the file's language, once the language stage has named it

    @classmethod
    def of(cls, record: Any, stage: str, reason: str, detail: str = "") -> "Rejected":
        """Reject a record, keeping whatever locating fields it has and the start of its text
        (its `content` or `text`)."""
        text = getattr(record, "content", None) or getattr(record, "text", None)
        size = getattr(record, "size", None)
        return cls(
            id=getattr(record, "id", ""),
            stage=stage,
            reason=reason,
            detail=detail,
            source=getattr(record, "source", None),
            repo=getattr(record, "repo", None),
            path=getattr(record, "path", None),
            excerpt=excerpt_of(text, MAX_EXCERPT_BYTES),
            size=size if isinstance(size, int) else len(text.encode("utf-8", "replace")) if text else None,
            lang=getattr(record, "lang", None),
        )

    def with_excerpt_cut(self, limit: int) -> "Rejected":
        """The rejection with its excerpt cut to `limit` bytes (0: none)."""
        cut = excerpt_of(self.excerpt, limit)
        return self if cut == self.excerpt else dataclasses.replace(self, excerpt=cut)

    def to_row(self) -> dict:
        return flat_row(self)


@dataclasses.dataclass(frozen=True)
class RepoSnapshot:
    """What a source saw of one repository: the crawl snapshot that goes into the version."""

    source: str
    repo: str
    revision: str | None  # commit id, or "tree:<sha1>" of a plain folder's listing
    license: str | None
    stars: int | None
    files: int

    def to_row(self) -> dict:
        return flat_row(self)


def flat_row(record: Any) -> dict:
    """A record's fields as a new dict. The records hold no dataclasses, so this is what
    dataclasses.asdict gives, without its deep copy of every value (a tenth of the cost,
    paid once per row written)."""
    return dict(vars(record))


def record_rng(seed: int, *parts: str) -> random.Random:
    """A random generator seeded by the run seed and a record's identity.

    Every random choice about a record (markup placement, masking) comes from here,
    so reruns and every worker make the same choice whatever the processing order.
    """
    digest = hashlib.sha256("\0".join([str(seed), *map(str, parts)]).encode("utf-8", "surrogatepass")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclasses.dataclass(frozen=True)
class StackPost:
    """A question or answer row of a Stack Exchange dump's Posts.xml (body HTML as in the dump)."""

    QUESTION: ClassVar[int] = 1
    ANSWER: ClassVar[int] = 2

    id: str  # record id, `make_id(site, post_id)`
    site: str  # the dump's site, e.g. stackoverflow.com
    post_id: int  # Id
    post_type: int  # PostTypeId: 1 question, 2 answer
    parent_id: int | None  # ParentId: an answer's question
    score: int  # Score
    creation_date: str  # CreationDate, ISO 8601 as in the dump (sorts as text)
    title: str = ""  # Title (questions)
    tags: tuple[str, ...] = ()  # Tags (questions), in the dump's order
    body: str = ""  # Body: HTML

    @staticmethod
    def make_id(site: str, post_id: int) -> str:
        return record_id("stackoverflow", site, "post", str(post_id))

    @property
    def question_id(self) -> int:
        """The id of the question this post belongs to (its own id for a question)."""
        return self.post_id if self.post_type == self.QUESTION else self.parent_id


@dataclasses.dataclass(frozen=True)
class StackComment:
    """A row of a Stack Exchange dump's Comments.xml (the text is plain, not HTML)."""

    id: str  # record id, `make_id(site, comment_id)`
    site: str
    comment_id: int  # Id
    post_id: int  # PostId: the question or answer commented on
    score: int  # Score
    creation_date: str  # CreationDate
    text: str  # Text

    @staticmethod
    def make_id(site: str, comment_id: int) -> str:
        return record_id("stackoverflow", site, "comment", str(comment_id))
