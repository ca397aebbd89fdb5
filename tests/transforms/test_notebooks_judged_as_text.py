"""Notebooks are judged as the model sees them: converted before the filters and dedup (paper §3.1, A.3)."""

from __future__ import annotations

import base64
import io
import os
import shutil

import nbformat
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from nbformat import v4
from PIL import Image

from schemas.config import FiltersConfig
from schemas.records import RepoFile
from tests.conftest import SAMPLE_REPOS, run_cli
from transforms.cleaning.quality_checks import check_file
from transforms.formatting import markup
from transforms.formatting.notebooks import ConvertNotebooksFn

CELLS = [
    ("markdown", "# Noise\nA plot of *random* pixels."),
    ("code", "import numpy as np\nimport matplotlib.pyplot as plt\nrng = np.random.default_rng(0)"),
    ("code", "plt.imshow(rng.random((160, 160, 3)))"),
]


def noise_png(seed: int, side: int = 160) -> bytes:
    """A real PNG of random pixels (incompressible: about 60-80 KB)."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def notebook(png: bytes | None, execution_count: int = 1, stream: str = "done\n") -> str:
    """A notebook written with nbformat's v4 API; the last code cell shows `png` (and prints `stream`)."""
    nb = v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    for kind, source in CELLS:
        nb.cells.append(v4.new_markdown_cell(source) if kind == "markdown" else v4.new_code_cell(source))
    last = nb.cells[-1]
    if png is not None:
        last.execution_count = execution_count
        last.outputs = [
            v4.new_output("stream", name="stdout", text=stream),
            v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"}),
        ]
    return nbformat.writes(nb, version=4)


def record(content: str, path: str = "plots/noise.ipynb") -> RepoFile:
    return RepoFile(RepoFile.make_id("local", "o/r", path, None), "local", "o/r", path, None, "MIT", None, len(content), content)


def test_a_notebook_with_a_large_image_passes_the_filters_once_converted():
    png = noise_png(0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 60_000
    raw = notebook(png)
    assert check_file(raw, FiltersConfig()) is not None  # judged as JSON, the base64 line would reject it
    fn = ConvertNotebooksFn()
    fn.setup()
    converted = fn(record(raw))
    assert check_file(converted.content, FiltersConfig()) is None
    assert "iVBOR" not in converted.content and "done" not in converted.content and "<Figure>" not in converted.content
    assert converted.content.endswith("<cell>\nplt.imshow(rng.random((160, 160, 3)))\n</cell>")
    assert (converted.nbformat, converted.kernel, converted.size) == (4, "python", len(raw))
    assert fn.stats == {"notebooks": 1, "outputs-dropped": 2}


def test_notebooks_differing_only_in_outputs_have_the_same_text():
    fn = ConvertNotebooksFn()
    fn.setup()
    a = fn(record(notebook(noise_png(1), execution_count=3, stream="3 s\n")))
    b = fn(record(notebook(noise_png(2), execution_count=41, stream="9 s\n"), path="copy/noise.ipynb"))
    c = fn(record(notebook(None)))
    assert a.content == b.content == c.content


@pytest.mark.slow
def test_in_a_run_the_image_notebook_is_kept_without_outputs_and_output_twins_are_duplicates(tmp_path):
    repo = tmp_path / "repos" / "plots"
    (repo / "a").mkdir(parents=True)
    (repo / "b").mkdir()
    shutil.copy(os.path.join(SAMPLE_REPOS, "textkit", "LICENSE"), repo / "LICENSE")
    (repo / "a" / "noise.ipynb").write_text(notebook(noise_png(3), execution_count=7), encoding="utf-8")
    (repo / "b" / "noise.ipynb").write_text(notebook(noise_png(4), execution_count=12, stream="again\n"), encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"name": "nb", "sources": {"local": [{"path": "repos"}]}, "output": {"document_shards": 1}}))
    run_cli("run", "--config", str(config), "--out", str(tmp_path / "out"), "--direct_running_mode=in_memory")
    version = tmp_path / "out" / "nb" / "v0001"
    documents = pq.read_table(version / "documents").to_pylist()
    rejected = pq.read_table(version / "rejected").to_pylist()
    notebooks = [d for d in documents if d["kind"] == "notebook"]
    assert len(notebooks) == 1, rejected
    body = markup.unwrap("file", notebooks[0]["text"])[0]
    assert body.startswith("<text>\nNoise\n\nA plot of random pixels.\n</text>\n<cell>\nimport numpy as np")
    assert "iVBOR" not in body and "again" not in body
    twins = [(r["stage"], r["reason"]) for r in rejected if r["path"].endswith("noise.ipynb")]
    assert len(twins) == 1 and twins[0][0] == "dedup", twins
