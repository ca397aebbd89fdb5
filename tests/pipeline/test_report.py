"""report.html: self-contained, with the counts, per-language sizes and embedded plots."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

from PIL import Image

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
