"""report.html's examples: a few rejections and kept documents, collapsed, and inert whatever the data holds."""

from __future__ import annotations

import json
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.report import REPORT, rendered_dom, write_report
from pipeline.report_examples import EXAMPLES, OPENING_LINES
from schemas import arrow
from tests.pipeline.test_show import listed_files

# What a script from the data would do if it ran: retitle the page and mark the document.
RAN = "document.title='RAN';document.documentElement.setAttribute('data-ran','1')"
HOSTILE = [
    f"<script>{RAN}</script>",
    f'<img src="no-such-image" onerror="{RAN}">',
    f"</pre></div></details><script>{RAN}</script><details open>",
    f'<a href="javascript:{RAN}">click</a>',
    f'<svg onload="{RAN}"></svg>',
]


def hostile_version(root) -> str:
    """A version whose rejections and documents hold markup that would run script if it were not escaped."""
    version = os.path.join(str(root), "hostile", "v0001")
    for name in ("documents", "rejected"):
        os.makedirs(os.path.join(version, name))
    rejected = [
        {"id": f"r{i}", "stage": "filters", "reason": "long-line", "detail": HOSTILE[i % 5], "repo": "o/<b>r</b>",
         "path": HOSTILE[(i + 1) % 5], "excerpt": "\n".join(HOSTILE), "size": 900}
        for i in range(5)
    ] + [{"id": "s0", "stage": "<script>x</script>", "reason": HOSTILE[1], "excerpt": HOSTILE[0], "size": 10}]  # fmt: skip
    documents = [
        {"id": f"d{i}", "kind": "code", "lang": "HTML", "repo": "o/r", "path": f"p{i}.html",
         "text": "<| file ext=.html |>\n" + "\n".join(HOSTILE * 4), "tags": [], "meta": []}
        for i in range(4)
    ]  # fmt: skip
    documents.append({"id": "d9", "kind": "code", "lang": HOSTILE[0], "text": "x", "tags": [], "meta": []})
    pq.write_table(pa.Table.from_pylist(rejected, schema=arrow.REJECTED), os.path.join(version, "rejected", "part-0.parquet"))
    pq.write_table(pa.Table.from_pylist(documents, schema=arrow.DOCUMENT), os.path.join(version, "documents", "part-0.parquet"))
    counts = {
        "filters": {"in": 9, "kept": 4, "rejected": {"long-line": 5}},
        "<script>x</script>": {"in": 1, "kept": 0, "rejected": {HOSTILE[1]: 1}},
    }
    manifest = {
        "name": "hostile",
        "version": "v0001",
        "documents": 5,
        "rejected": 6,
        "counts": counts,
        "files": listed_files(version),
    }
    with open(os.path.join(version, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    write_report(version)
    return version


def test_examples_are_collapsed_escaped_and_few(tmp_path):
    page = open(os.path.join(hostile_version(tmp_path), REPORT)).read()
    examples = page[page.index("<h2>Examples</h2>") :]
    assert not re.search(r"<(script|img|svg onload|a)\b", examples) and not re.search(r"<[^>]+\son\w+=", page)
    assert "&lt;script&gt;document.title=&#x27;RAN&#x27;" in examples  # shown, as text
    details = re.findall(r"<details[^>]*>", examples)
    assert details == ["<details>"] * 4  # two stage/reason pairs, two languages; none open
    long_line = re.search(r"<summary>filters / long-line: (\d) of 5</summary>(.*?)</details>", examples, re.S)
    assert long_line and int(long_line.group(1)) == EXAMPLES == long_line.group(2).count('<div class="example">')
    html_docs = re.search(r"<summary>HTML: 3 of 4</summary>(.*?)</details>", examples, re.S).group(1)
    assert html_docs.count('<div class="example">') == EXAMPLES
    assert all(len(pre.split("\n")) == OPENING_LINES for pre in re.findall(r"<pre>(.*?)</pre>", html_docs, re.S))


@pytest.mark.slow
def test_chromium_runs_nothing_from_the_examples(tmp_path, chromium):
    """Headless Chromium renders the report: no script from the data ran, and the DOM holds none of its elements."""
    control = tmp_path / "control"
    control.mkdir()
    (control / REPORT).write_text(
        f"<!DOCTYPE html><html><head><title>control</title></head><body>{''.join(HOSTILE)}</body></html>"
    )
    unescaped = rendered_dom(str(control))
    assert "<title>RAN</title>" in unescaped and 'data-ran="1"' in unescaped  # the same payloads, unescaped, do run

    dom = rendered_dom(hostile_version(tmp_path))
    assert re.search(r"<title>([^<]*)</title>", dom).group(1) == "hostile v0001"
    assert "data-ran" not in dom.split(">", 2)[1]  # the <html> element is unmarked
    assert not re.search(r"<(script|img|iframe|a)\b", dom, re.I)  # no element from the data
    assert not re.search(r"<[^>]+\son\w+=", dom)  # no event-handler attribute anywhere
    assert dom.count("<details>") == 4 and "<details open" not in dom  # </details> in the data closed nothing
    shown = "&lt;script&gt;document.title='RAN';document.documentElement.setAttribute('data-ran','1')&lt;/script&gt;"
    assert dom.count(shown) >= EXAMPLES  # the payloads are there, as text
