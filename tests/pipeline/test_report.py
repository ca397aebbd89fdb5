"""report.html: self-contained, with the counts, per-language sizes and embedded plots."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
from PIL import Image

from pipeline.report import rendered_dom, screenshot
from tests.conftest import run_cli


def test_report_is_self_contained_with_plots(sample_version):
    version, _ = sample_version()
    page = (version / "report.html").read_text()
    manifest = json.loads((version / "manifest.json").read_text())

    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing loaded from elsewhere
    for stage in manifest["counts"]:
        assert f"<td>{stage}</td>" in page
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert {alt for alt, _ in images} >= {"bytes per language", "star buckets", "document length"}
    for _, data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            assert img.format == "PNG" and img.size[0] > 200 and img.size[1] > 100
    assert "<td>Python</td>" in page and "<td>stackoverflow</td>" in page


def test_report_is_the_same_on_rerun(sample_version, tmp_path):
    version = tmp_path / "v0001"
    shutil.copytree(sample_version()[0], version)
    first = (version / "report.html").read_bytes()
    run_cli("report", str(version))
    assert (version / "report.html").read_bytes() == first


def test_chromium_draws_the_report_with_its_stage_table(sample_version, tmp_path):
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
