"""`code-corpus show`: a seeded sample of what a version kept or rejected, to look at.

    code-corpus show datasets/sample/v0001 --stage filters --reason long-line
    code-corpus show datasets/sample/v0001 --kept --lang Python -n 3 --seed 7
    code-corpus show gs://bucket/corpus/v0003 --grep 'eval\\(' --format jsonl

Without `--kept` it samples rejected/ (each row's excerpt), with it documents/ (each
text as the model sees it, markup included). The Parquet files are read one record
batch at a time through `infra.storage`, so a gs:// version reads the same as a local
one and no version is ever held whole: each batch is filtered with Arrow, and a
seeded reservoir keeps the `n` matching rows with the smallest random keys drawn so
far. Same version, filters and seed: same sample.

A duplicate's rejection names its survivor (near-dedup: `survivor=<id> jaccard=0.83`;
exact dedup: the survivor's id), and the survivor is printed beside it. Survivors are
looked up by id in documents/, reading only the row groups whose id range holds them.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infra import storage
from infra.version import document_paths, listed_paths, read_manifest
from schemas.records import MAX_EXCERPT_BYTES, excerpt_of

REJECTED_DIR = "rejected"
# A rejection row is its locating fields and an excerpt of at most MAX_EXCERPT_BYTES: a
# batch of them holds at most a few MB, so they are read more at a time than documents.
REJECTED_BATCH_ROWS = 1024
REJECTED_COLUMNS = ["id", "stage", "reason", "detail", "source", "repo", "path", "lang", "size", "excerpt"]
DOCUMENT_COLUMNS = ["id", "kind", "source", "repo", "path", "lang", "text"]
# How the dedup stages name a rejection's survivor: near-dedup "survivor=<id> jaccard=0.83",
# exact dedup the survivor's bare id.
SURVIVOR = re.compile(r"\bsurvivor=([0-9a-f]{24})\b")
JACCARD = re.compile(r"\bjaccard=(\d*\.?\d+)")
BARE_ID = re.compile(r"[0-9a-f]{24}")
DUPLICATE_REASONS = ("near-duplicate", "duplicate")
SURVIVOR_OPENING_BYTES = 1024  # of a survivor shown without an excerpt beside it
MIN_WIDTH = 60  # of the two columns together, however narrow the terminal says it is
# Control characters other than tab and newline: a corpus may hold terminal escape sequences.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclasses.dataclass(frozen=True)
class Query:
    """Which records to sample: rejections by default, kept documents with `kept`."""

    kept: bool = False
    stage: str | None = None
    reason: str | None = None
    lang: str | None = None
    repo: str | None = None
    grep: str | None = None  # a regular expression (RE2, as Arrow matches) searched in the text shown
    n: int = 5
    seed: int = 0

    def __post_init__(self):
        if self.kept and (self.stage or self.reason):
            raise ValueError("--stage and --reason select rejections; leave them out with --kept")
        if self.n < 1:
            raise ValueError(f"-n must be at least 1, got {self.n}")
        if self.grep is not None:
            try:
                pc.match_substring_regex(pa.array([""]), self.grep)
            except pa.ArrowInvalid as e:
                raise ValueError(f"--grep: {self.grep!r} is not a regular expression Arrow can match (RE2 syntax): {e}") from None

    @property
    def text_column(self) -> str:
        return "text" if self.kept else "excerpt"

    def matches(self, batch: pa.RecordBatch) -> np.ndarray:
        """Indices of the batch's rows this query selects."""
        mask = None
        for column, value in (("stage", self.stage), ("reason", self.reason), ("lang", self.lang), ("repo", self.repo)):
            if value is not None:
                mask = _and(mask, pc.equal(column_of(batch, column), value))
        if self.grep is not None:
            mask = _and(mask, pc.match_substring_regex(column_of(batch, self.text_column), self.grep))
        if mask is None:
            return np.arange(batch.num_rows)
        return np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))


def _and(mask, other):
    return other if mask is None else pc.and_(mask, other)


def column_of(batch: pa.RecordBatch, name: str) -> pa.Array:
    """A column of the batch, all nulls where the file has none (a version written before it existed)."""
    index = batch.schema.get_field_index(name)
    return batch.column(index) if index >= 0 else pa.nulls(batch.num_rows, pa.string())


def sample(version_dir: str, query: Query) -> list[dict]:
    """Up to `query.n` matching rows, seeded, in id order; a duplicate's with its survivor."""
    read_manifest(version_dir)  # fails now, naming the directory, if it is not a complete version
    if query.kept:
        paths, columns, rows = document_paths(version_dir), DOCUMENT_COLUMNS, storage.TEXT_BATCH_ROWS
    else:
        paths, columns, rows = listed_paths(version_dir, REJECTED_DIR), REJECTED_COLUMNS, REJECTED_BATCH_ROWS
    batches = (batch for path in paths for batch in storage.parquet_batches(path, columns, rows))
    chosen = sorted(reservoir(batches, query), key=lambda row: row["id"])
    survivors = find_documents(version_dir, {s[0] for s in map(survivor_of, chosen) if s})
    for row in chosen:
        found = survivor_of(row)
        if found:
            row["survivor"] = {"id": found[0], "jaccard": found[1], **survivors.get(found[0], {})}
    return chosen


def reservoir(batches, query: Query) -> list[dict]:
    """The `query.n` matching rows with the smallest keys of a seeded generator.

    Each matching row draws a key; a batch's rows are turned into Python objects only
    when their key beats the largest kept so far, so memory is n rows and one batch.
    """
    rng = np.random.default_rng(query.seed)
    kept: list[tuple[float, int, dict]] = []  # a max-heap on the key (negated)
    order = itertools.count()
    for batch in batches:
        matching = query.matches(batch)
        if not len(matching):
            continue
        keys = rng.random(len(matching))
        if len(kept) == query.n:
            beats = keys < -kept[0][0]
            matching, keys = matching[beats], keys[beats]
        for key, row in zip(keys, batch.take(pa.array(matching)).to_pylist()):
            entry = (-key, next(order), row)
            if len(kept) < query.n:
                heapq.heappush(kept, entry)
            elif key < -kept[0][0]:
                heapq.heapreplace(kept, entry)
    return [row for _, _, row in kept]


def survivor_of(row: dict) -> tuple[str, float | None] | None:
    """(survivor id, Jaccard or None) a duplicate's rejection names, or None."""
    if row.get("reason") not in DUPLICATE_REASONS:
        return None
    detail = (row.get("detail") or "").strip()
    named = SURVIVOR.search(detail)
    if named:
        jaccard = JACCARD.search(detail)
        return named[1], float(jaccard[1]) if jaccard else None
    return (detail, None) if BARE_ID.fullmatch(detail) else None


def find_documents(version_dir: str, ids: set[str]) -> dict[str, dict]:
    """The documents of these ids, by id: only row groups whose id range could hold one are read."""
    found: dict[str, dict] = {}
    if not ids:
        return found
    for path in document_paths(version_dir):
        groups = candidate_row_groups(path, ids)
        if not groups:
            continue
        for batch in storage.parquet_batches(path, DOCUMENT_COLUMNS, storage.TEXT_BATCH_ROWS, row_groups=groups):
            wanted = np.flatnonzero(pc.is_in(batch.column("id"), pa.array(sorted(ids))).to_numpy(zero_copy_only=False))
            for row in batch.take(pa.array(wanted)).to_pylist():
                found[row["id"]] = row
    return found


def candidate_row_groups(path: str, ids: set[str]) -> list[int]:
    """Row groups of one Parquet file whose id statistics (min, max) admit one of `ids`."""
    with storage.parquet_file(path) as f:
        meta = f.metadata
        column = f.schema_arrow.get_field_index("id")
        groups = []
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(column).statistics
            if stats is None or not stats.has_min_max or any(stats.min <= x <= stats.max for x in ids):
                groups.append(i)
    return groups


def render_jsonl(rows: list[dict]) -> str:
    return "\n".join(json.dumps(row, ensure_ascii=False, sort_keys=True) for row in rows)


def render_text(rows: list[dict], query: Query, width: int = 100) -> str:
    """Each record: a header line, then its text or excerpt (a duplicate's beside its survivor)."""
    if not rows:
        return "no record matches"
    parts = []
    for row in rows:
        parts.append(header(row))
        if "survivor" in row:
            parts.append(beside_survivor(row, width))
        elif query.kept:
            parts.append(printable(row["text"]))
        else:
            parts.append(printable(row["excerpt"]) if row.get("excerpt") else "(no excerpt)")
            parts.append(excerpt_note(row))
        parts.append("")
    return "\n".join(parts)


def header(row: dict) -> str:
    """One line naming the record: id, repo, path, stage, reason, detail, size."""
    stage = row.get("stage", "kept")
    size = len(row["text"].encode("utf-8", "replace")) if "text" in row else row.get("size")
    fields = [
        ("id", row["id"]),
        ("repo", row.get("repo")),
        ("path", row.get("path")),
        ("stage", stage),
        ("reason", row.get("reason")),
        ("detail", row.get("detail")),
        ("lang", row.get("lang") or row.get("kind")),
        ("size", size),
    ]
    shown = " ".join(f"{k}={json.dumps(v, ensure_ascii=False) if k == 'detail' else v}" for k, v in fields if v not in (None, ""))
    return "=== " + printable(shown)


def excerpt_note(row: dict) -> str:
    size, excerpt = row.get("size"), len((row.get("excerpt") or "").encode("utf-8"))
    if not excerpt or size is None or excerpt >= size:
        return ""
    return f"[... the first {excerpt:,} of {size:,} bytes]"


def beside_survivor(row: dict, width: int) -> str:
    """The rejection's excerpt and the start of its survivor's text as two columns."""
    survivor = row["survivor"]
    jaccard = "" if survivor["jaccard"] is None else f" (Jaccard {survivor['jaccard']:.2f})"
    said = f"{row['reason']} of {survivor['id']}{jaccard}"
    left = row.get("excerpt") or ""
    if "text" not in survivor:
        return f"{said}: not among the kept documents\n{printable(left)}"
    where = f"{survivor.get('repo') or ''}/{survivor.get('path') or ''}"
    if not left:  # exact dedup sets contents aside before it decides: its rejections hold no excerpt
        opening = printable(excerpt_of(survivor["text"], SURVIVOR_OPENING_BYTES))
        return f"{said}; the rejection has no excerpt, the survivor {printable(where)} opens:\n{opening}"
    half = (max(width, MIN_WIDTH) - 3) // 2
    columns = [wrapped(left, half), wrapped(excerpt_of(survivor["text"], MAX_EXCERPT_BYTES), half)]
    columns[1] = columns[1][: len(columns[0]) + 1]  # as far as the excerpt goes, and the survivor's markup line
    lines = [said, f"left: the rejection's excerpt; right: survivor {printable(where)}", f"{'-' * half}-+-{'-' * half}"]
    for a, b in itertools.zip_longest(*columns, fillvalue=""):
        lines.append(f"{a:<{half}} | {b}".rstrip())
    return "\n".join(lines)


def wrapped(text: str, width: int) -> list[str]:
    """The text's lines cut into pieces of `width` characters (tabs as four spaces)."""
    pieces = []
    for line in printable(text).expandtabs(4).split("\n"):
        pieces += [line[i : i + width] for i in range(0, len(line), width)] or [""]
    return pieces


def printable(text: str) -> str:
    """The text with control characters (terminal escapes) shown as \\xNN, tabs and newlines kept."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
