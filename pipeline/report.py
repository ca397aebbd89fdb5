"""`report.html`: a self-contained page describing one dataset version.

Per-stage kept/rejected counts with reasons, bytes per language, star-bucket and
document-length histograms (inline SVG bar charts, so the file needs nothing
else), tokens per shard when the version has shards, and examples (a few rejections
per stage and reason, a few kept documents per language; collapsed). The documents
are read one Parquet batch at a time, only the columns needed.
"""

from __future__ import annotations

import html
import os

from infra import storage
from infra.version import document_paths, read_manifest
from pipeline.document_stats import DocumentStats
from pipeline.report_examples import kept_examples, rejection_examples, render_examples
from pipeline.summary import flow_order
from pipeline.svg_chart import bar_chart

REPORT = "report.html"


def document_stats(version_dir: str, manifest: dict) -> dict:
    """Bytes and documents per language, star buckets and log2 length bins (the manifest's
    `document_stats`, counted as the documents were written; those of a version written before
    they were kept are counted now), and the kept examples."""
    paths = document_paths(version_dir, manifest)
    if "document_stats" in manifest:
        stats = DocumentStats.summed([manifest["document_stats"]])
    else:
        stats = DocumentStats()
        for path in paths:
            for batch in storage.parquet_batches(path, ["text", "lang", "kind", "star_bucket"], storage.TEXT_BATCH_ROWS):
                stats.add(batch)
    return {**stats.figures, "kept_examples": kept_examples(paths, stats.figures["docs_per_lang"])}


def shard_tokens(manifest: dict) -> list[tuple[str, int]]:
    """(shard, tokens) for every shard the manifest lists with a token count (one row per .bin/.idx pair)."""
    shards = {}
    for path, f in manifest.get("files", {}).items():
        if "tokens" in f:
            shards[os.path.splitext(path)[0]] = f["tokens"]
    return sorted(shards.items())


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def render_report(version_dir: str) -> str:
    manifest = read_manifest(version_dir)
    stats = document_stats(version_dir, manifest)
    counts = manifest.get("counts", {})
    sections = [f"<h1>{html.escape(manifest['name'])} {html.escape(manifest['version'])}</h1>"]
    sections.append(
        _table(
            ["field", "value"],
            [
                ["documents", manifest.get("documents", 0)],
                ["rejected", manifest.get("rejected", 0)],
                ["stages", ", ".join(manifest.get("stages", []))],
                ["parents", ", ".join(manifest.get("parents", [])) or "-"],
                ["config hash", manifest.get("config_hash", "")],
                ["code version", manifest.get("code_version", "")],
            ],
        )
    )
    rows = []
    for stage in flow_order(counts, manifest.get("flow")):
        c = counts[stage]
        reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(c["rejected"].items(), key=lambda kv: -kv[1]))
        rows.append([stage, c["in"], c["kept"], sum(c["rejected"].values()), reasons])
    sections += ["<h2>Stages</h2>", _table(["stage", "read", "kept", "rejected", "reasons"], rows)]

    langs = sorted(stats["bytes_per_lang"].items(), key=lambda kv: -kv[1])
    sections += ["<h2>Size per language</h2>"]
    if langs:
        labels, values = [lang for lang, _ in langs], [b for _, b in langs]
        sections.append(bar_chart("bytes per language", "Bytes per language", labels, values, "language", "bytes"))
    rows = [[lang, stats["docs_per_lang"][lang], b] for lang, b in langs]
    sections.append(_table(["language", "documents", "bytes"], rows))

    buckets = stats["star_buckets"]
    sections += ["<h2>Star buckets</h2>"]
    values = [buckets.get(i, 0) for i in range(6)]
    sections.append(bar_chart("star buckets", "Documents per star bucket", list(range(6)), values, "dstars", "documents"))
    bins = stats["length_bins"]
    if bins:
        top = max(bins)
        labels = [f"2^{i}" for i in range(top + 1)]
        counts = [bins.get(i, 0) for i in range(top + 1)]
        title = "Documents by length (bytes, log2 bins)"
        sections += ["<h2>Document length</h2>", bar_chart("document length", title, labels, counts, "bytes", "documents")]
    tokens = shard_tokens(manifest)
    if tokens:
        sections += ["<h2>Tokens per shard</h2>", _table(["shard", "tokens"], [[p, t] for p, t in tokens])]
    sections.append(render_examples(rejection_examples(version_dir), stats, manifest))
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}svg{display:block;margin:1em 0}"
        "details{margin:.3em 0}summary{cursor:pointer}.example{border-left:3px solid #ccc;padding-left:.6em;margin:.6em 0}"
        ".where,.detail{margin:.2em 0;color:#555;font-size:90%}pre{white-space:pre-wrap;background:#f6f6f6;padding:.4em}"
    )
    title = html.escape(f"{manifest['name']} {manifest['version']}")
    # The page needs nothing but itself: no script, no fetch, even if some text escaped its escaping.
    policy = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
    head = f'<head><meta charset="utf-8">{policy}<title>{title}</title><style>{style}</style></head>'
    return f"<!DOCTYPE html>\n<html>{head}<body>{''.join(sections)}</body></html>\n"


def write_report(version_dir: str) -> str:
    path = storage.join(version_dir, REPORT)
    storage.write_bytes(path, render_report(version_dir).encode("utf-8"))
    return path


def screenshot(version_dir: str, png_path: str, browser: str = "chromium") -> str:
    """Render report.html in headless Chromium and save the page as a PNG."""
    _headless(version_dir, browser, "--hide-scrollbars", "--window-size=1100,2600", f"--screenshot={os.path.abspath(png_path)}")
    return png_path


def rendered_dom(version_dir: str, browser: str = "chromium") -> str:
    """report.html's DOM as headless Chromium builds it (what a reader's browser shows)."""
    return _headless(version_dir, browser, "--dump-dom")


def _headless(version_dir: str, browser: str, *flags: str) -> str:
    """Run headless `browser` on the version's report.html with `flags`; return its stdout."""
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which(browser)
    if not exe:
        raise FileNotFoundError(f"{browser} not found; install it (e.g. apt-get install chromium) to take screenshots")
    with tempfile.TemporaryDirectory() as profile, storage.LocalCopy(version_dir, fetch=(REPORT,)) as local:
        page = os.path.abspath(os.path.join(local, REPORT))
        proc = subprocess.run(
            [
                exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", *flags, f"file://{page}",
            ],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    return proc.stdout
