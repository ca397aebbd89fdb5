"""Notebooks are judged as the model sees them: converted before the filters and dedup (paper §3.1, A.3)."""

from __future__ import annotations

import base64
import collections
import io

import nbformat
import numpy as np
from nbformat import v4
from PIL import Image

from schemas.config import FiltersConfig
from schemas.records import RepoFile
from transforms.cleaning.filters import QualityFilterFn
from transforms.cleaning.quality_checks import check_file
from transforms.dedup.exact import ResolveDuplicatesFn, SpilledFile
from transforms.dedup.exact_keys import dedup_key
from transforms.formatting import markup
from transforms.formatting.code_files import FormatCodeFn
from transforms.formatting.notebooks import ConvertNotebooksFn
from transforms.record_fn import run_record_fn

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


def test_through_the_stages_in_their_order_the_image_notebook_is_kept_without_outputs_and_its_twin_is_a_duplicate():
    """The code stages from notebooks to format, in the run's order (the sample build's manifest shows it), each
    RecordFn run by run_record_fn: the converted notebook passes the filters, and the copy whose outputs differ
    has its dedup key."""
    files = [
        record(notebook(noise_png(3), execution_count=7), path="a/noise.ipynb"),
        record(notebook(noise_png(4), execution_count=12, stream="again\n"), path="b/noise.ipynb"),
    ]
    converted = run_record_fn(ConvertNotebooksFn(), files)
    filtered = run_record_fn(QualityFilterFn(FiltersConfig()), converted.kept)
    assert len(filtered.kept) == 2, filtered.rejected
    groups = collections.defaultdict(list)
    for i, f in enumerate(filtered.kept):
        groups[dedup_key(f.path, f.content)].append(SpilledFile("spill", i, f).shuffled())
    deduped = run_record_fn(ResolveDuplicatesFn(()), sorted(groups.items()))
    (survivor,), (twin,) = deduped.kept, deduped.rejected
    assert (twin.stage, twin.reason, twin.detail) == ("dedup", "duplicate", survivor.stub.id)
    formatted = run_record_fn(FormatCodeFn(seed=0), [survivor.stub], star_boundaries=[])
    body = markup.unwrap("file", formatted.kept[0].text)[0]
    assert body.startswith("<text>\nNoise\n\nA plot of random pixels.\n</text>\n<cell>\nimport numpy as np")
    assert "iVBOR" not in body and "again" not in body
