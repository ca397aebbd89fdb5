"""Examples for report.html: a few rejections per stage and reason, a few kept documents per language.

A corpus is hostile input: any text here may hold `<script>`, `</details>` or
`javascript:`. Every value taken from the data goes through `html.escape` and only into
element text, never into an attribute, so the page shows it and runs none of it.

Rejections are read one batch at a time, only the columns shown; each (stage, reason)
keeps its first `EXAMPLES` rows in file order (shards are sorted by id, so these are
a fixed, arbitrary choice). Kept documents are picked the same way per language, reading
a row group's text only when it holds a pick.
"""

from __future__ import annotations

import collections
import html

import pyarrow as pa

from infra import storage
from infra.version import listed_paths
from pipeline.show import REJECTED_BATCH_ROWS, REJECTED_DIR, column_of
from pipeline.summary import flow_order

EXAMPLES = 3  # per stage and reason, and per language
OPENING_LINES = 12  # of a kept document
LINE_CHARS = 160  # a longer line is cut (minified code)
EXAMPLE_COLUMNS = ["id", "stage", "reason", "detail", "repo", "path", "size", "excerpt"]
KEPT_COLUMNS = ["id", "repo", "path", "kind", "lang", "text"]


def rejection_examples(version_dir: str) -> dict[tuple[str, str], list[dict]]:
    """(stage, reason) → its first EXAMPLES rejections, streamed from rejected/."""
    examples: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    counts: collections.Counter = collections.Counter()
    for path in listed_paths(version_dir, REJECTED_DIR):
        for batch in storage.parquet_batches(path, EXAMPLE_COLUMNS, REJECTED_BATCH_ROWS):
            keys = zip(column_of(batch, "stage").to_pylist(), column_of(batch, "reason").to_pylist())
            for row in first_rows(lambda: batch, keys, counts):
                examples[(row.get("stage"), row.get("reason"))].append(row)
    return dict(examples)


def first_rows(read, labels, counts: collections.Counter) -> list[dict]:
    """The rows whose label has had fewer than EXAMPLES so far (counted in `counts`), taken from
    `read()` (a batch or table of those rows, read only if one is picked)."""
    picked = []
    for i, label in enumerate(labels):
        if counts[label] < EXAMPLES:
            counts[label] += 1
            picked.append(i)
    return read().take(pa.array(picked, type=pa.int64())).to_pylist() if picked else []


def kept_examples(paths: list[str], docs_per_label: dict) -> dict[str, list[dict]]:
    """label (language, else kind) → the opening lines of its first EXAMPLES documents in file
    order. A row group's labels are read first and its other columns only when it holds a pick;
    reading stops once every label of `docs_per_label` has its examples."""
    wanted = {label: min(EXAMPLES, n) for label, n in docs_per_label.items()}
    by_label: dict[str, list[dict]] = collections.defaultdict(list)
    counts: collections.Counter = collections.Counter()
    for path in paths:
        with storage.parquet_file(path) as f:
            for group in range(f.metadata.num_row_groups):
                if all(counts[label] >= n for label, n in wanted.items()):
                    return dict(by_label)
                labeled = f.read_row_group(group, columns=["lang", "kind"])
                labels = [
                    lang or kind for lang, kind in zip(labeled.column("lang").to_pylist(), labeled.column("kind").to_pylist())
                ]
                for row in first_rows(lambda: f.read_row_group(group, columns=KEPT_COLUMNS), labels, counts):
                    row["text"] = opening_lines(row["text"])
                    by_label[row["lang"] or row["kind"]].append(row)
    return dict(by_label)


def opening_lines(text: str) -> str:
    """The first OPENING_LINES lines, each cut to LINE_CHARS characters."""
    lines = text.split("\n", OPENING_LINES)[:OPENING_LINES]
    return "\n".join(line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " …" for line in lines)


def render_examples(rejections: dict, stats: dict, manifest: dict) -> str:
    """The examples section: one collapsed <details> per stage and reason, and per language."""
    counts = manifest.get("counts", {})
    order = {stage: i for i, stage in enumerate(flow_order(counts, manifest.get("flow")))}
    parts = ["<h2>Examples</h2>", "<h3>Rejected, per stage and reason</h3>"]
    for stage, reason in sorted(rejections, key=lambda key: (order.get(key[0], len(order)), str(key))):
        rows = rejections[(stage, reason)]
        total = counts.get(stage, {}).get("rejected", {}).get(reason, len(rows))
        summary = f"{_e(stage)} / {_e(reason)}: {len(rows)} of {total:,}"
        parts.append(f"<details><summary>{summary}</summary>{''.join(_rejection(row) for row in rows)}</details>")
    parts.append("<h3>Kept, per language: opening lines</h3>")
    kept = stats["kept_examples"]
    for label in sorted(kept):
        summary = f"{_e(label)}: {len(kept[label])} of {stats['docs_per_lang'][label]:,}"
        parts.append(f"<details><summary>{summary}</summary>{''.join(_kept(row) for row in kept[label])}</details>")
    return "".join(parts)


def _rejection(row: dict) -> str:
    where = " · ".join(_e(v) for v in (row.get("repo"), row.get("path"), row.get("id")) if v)
    size = f" · {row['size']:,} bytes" if row.get("size") is not None else ""
    detail = f'<p class="detail">{_e(row["detail"])}</p>' if row.get("detail") else ""
    excerpt = row.get("excerpt")
    body = f"<pre>{_e(excerpt)}</pre>" if excerpt else '<p class="detail">(no excerpt)</p>'
    return f'<div class="example"><p class="where">{where}{size}</p>{detail}{body}</div>'


def _kept(row: dict) -> str:
    where = " · ".join(_e(v) for v in (row.get("repo"), row.get("path"), row.get("id")) if v)
    return f'<div class="example"><p class="where">{where}</p><pre>{_e(row["text"])}</pre></div>'


def _e(value) -> str:
    return html.escape(str(value), quote=True)
