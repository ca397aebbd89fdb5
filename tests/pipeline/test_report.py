"""report.html: self-contained, with the counts, per-language sizes and inline bar charts."""

from __future__ import annotations

import collections
import json
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.report import rendered_dom, screenshot
from pipeline.svg_chart import bar_chart
from tests.conftest import run_cli


def test_report_is_self_contained_with_plots(sample_version):
    version, _ = sample_version()
    page = (version / "report.html").read_text()
    manifest = json.loads((version / "manifest.json").read_text())

    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing loaded from elsewhere
    for stage in manifest["counts"]:
        assert f"<td>{stage}</td>" in page
    charts = dict(re.findall(r'<svg [^>]*aria-label="([^"]+)"[^>]*>(.*?)</svg>', page))
    assert set(charts) == {"bytes per language", "star buckets", "document length"}
    languages = re.findall(r"<tr><td>([^<]+)</td><td>[\d,]+</td><td>([\d,]+)</td></tr>", page)
    assert bars(charts["bytes per language"]) == [(lang, int(b.replace(",", ""))) for lang, b in languages]
    star_buckets = collections.Counter(pq.read_table(version / "documents", columns=["star_bucket"])["star_bucket"].to_pylist())
    assert bars(charts["star buckets"]) == [(str(b), star_buckets[b]) for b in range(6)]
    assert sum(n for _, n in bars(charts["document length"])) == manifest["documents"]
    assert "<td>Python</td>" in page and "<td>stackoverflow</td>" in page


def bars(svg: str) -> list[tuple[str, int]]:
    """(label, value) of each bar, from its <title>."""
    return [(label, int(n.replace(",", ""))) for label, n in re.findall(r"<title>([^<]+): ([\d,]+)</title>", svg)]


def test_bar_heights_are_proportional_to_the_values():
    svg = bar_chart("demo", "Demo", ["a", "b", "c", "d"], [0, 250, 500, 1000], "x", "y")
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert heights[0] == 0 and heights[3] > 100
    assert [round(h / heights[3], 3) for h in heights] == [0, 0.25, 0.5, 1]
    assert bars(svg) == [("a", 0), ("b", 250), ("c", 500), ("d", 1000)]
    assert ">1k</text>" in svg and ">500</text>" in svg  # the y axis: top and middle ticks
    assert bar_chart("demo", "Demo", ["a"], [0], "x", "y").count("<rect") == 1  # all zero: no division by zero


def test_report_is_the_same_on_rerun(sample_version, tmp_path):
    version = tmp_path / "v0001"
    shutil.copytree(sample_version()[0], version)
    first = (version / "report.html").read_bytes()
    run_cli("report", str(version))
    assert (version / "report.html").read_bytes() == first


def test_chromium_draws_the_report_with_its_stage_table(sample_version, tmp_path, chromium):
    """Headless Chromium (installed by .ci/run) draws a page that is not blank and holds the stage table."""
    version, _ = sample_version()
    manifest = json.loads((version / "manifest.json").read_text())

    png = screenshot(str(version), str(tmp_path / "report.png"))
    with Image.open(png) as img:
        pixels = np.asarray(img.convert("L"), dtype=np.float64)
    assert pixels.shape == (2600, 1100)
    assert pixels.std() > 20  # text, tables and plots on white; a blank page has no variance
    assert (pixels < 128).mean() > 0.01  # and a share of it is dark ink

    dom = rendered_dom(str(version))
    stage_table = re.search(r"<h2>Stages</h2><table>(.+?)</table>", dom)
    assert stage_table, dom[:2000]
    for stage, c in manifest["counts"].items():
        assert f"<td>{stage}</td><td>{c['in']:,}</td><td>{c['kept']:,}</td>" in stage_table.group(1)


def test_the_writers_document_stats_are_what_the_documents_hold(sample_version, tmp_path):
    """The manifest's document_stats (counted by each shard's writer) give the report a version without
    them gets by reading its documents: the same report, byte for byte."""
    version = tmp_path / "v0001"
    shutil.copytree(sample_version()[0], version)
    manifest = json.loads((version / "manifest.json").read_text())
    stats = manifest.pop("document_stats")
    documents = pq.read_table(version / "documents").to_pylist()
    assert sum(stats["docs_per_lang"].values()) == manifest["documents"] == len(documents)
    assert sum(stats["bytes_per_lang"].values()) == sum(len(d["text"].encode()) for d in documents)
    (version / "manifest.json").write_text(json.dumps(manifest))
    first = (version / "report.html").read_bytes()
    run_cli("report", str(version))
    assert (version / "report.html").read_bytes() == first


def test_kept_examples_read_text_only_from_row_groups_that_hold_a_pick(tmp_path, monkeypatch):
    from pipeline.report_examples import EXAMPLES, kept_examples
    from schemas import arrow

    rows = [
        {"id": f"d{i:03d}", "kind": "code", "lang": "Python", "text": f"x = {i}\n", "tags": [], "meta": []} for i in range(40)
    ]
    rows[35]["lang"] = "Rust"  # the only Rust document, in the fourth row group
    path = str(tmp_path / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow.DOCUMENT), path, row_group_size=10)
    read = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(
        pq.ParquetFile, "read_row_group", lambda f, i, columns: read.append((i, "text" in columns)) or real(f, i, columns=columns)
    )

    examples = kept_examples([path], {"Python": 39, "Rust": 1})
    assert [r["id"] for r in examples["Python"]] == [f"d{i:03d}" for i in range(EXAMPLES)]
    assert [r["id"] for r in examples["Rust"]] == ["d035"]
    assert [i for i, text in read if text] == [0, 3]  # groups 1 and 2 hold no pick: their labels only
    assert max(i for i, _ in read) == 3  # every label had its examples: nothing after
