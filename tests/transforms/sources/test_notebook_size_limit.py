"""read.max_notebook_bytes holds in every source: a notebook between the two bounds is kept by each,
a code file of the same size is rejected by each, with the bound that applied in its detail."""

from __future__ import annotations

import json

from schemas.config import load_config
from schemas.records import Rejected, RepoFile
from schemas.sources_config import ArchiveLimits, BigQuerySource, GitHubSource
from tests.hostile.hostile_inputs import write
from tests.transforms.sources.network_fakes import make_tarball
from tests.transforms.sources.stack_files import stack_rows, write_parquet
from tests.transforms.sources.test_datasets_source import V1
from transforms.sources.bigquery.jobs import SQL_FILE, query_parameters
from transforms.sources.bigquery.source import row_record as bigquery_row
from transforms.sources.crawl.archives import RepoInfo, read_archive
from transforms.sources.crawl.state import crawl_key
from transforms.sources.datasets.rows import row_record as dataset_row
from transforms.sources.file_decoding import size_limit
from transforms.sources.local.source import list_repos, read_repo
from transforms.sources.registry import network_sources

FILE_BYTES, NOTEBOOK_BYTES = 1_000, 10_000
NOTEBOOK = json.dumps({"cells": [{"cell_type": "code", "source": "x = 1\n" * 400}], "metadata": {}, "nbformat": 4}).encode()
CODE = b"x = 1\n" * 400  # as large as the notebook: over FILE_BYTES, under NOTEBOOK_BYTES
assert FILE_BYTES < len(CODE) < NOTEBOOK_BYTES and FILE_BYTES < len(NOTEBOOK) < NOTEBOOK_BYTES


def outcome(records) -> dict[str, str]:
    """{path: "kept" or reason and detail} of the files among `records`."""
    return {
        r.path: "kept" if isinstance(r, RepoFile) else f"{r.reason}: {r.detail}"
        for r in records
        if isinstance(r, (RepoFile, Rejected)) and r.path
    }


EXPECTED = {"nb.IPYNB": "kept", "big.py": f"too-large: {len(CODE)} bytes > {FILE_BYTES}"}


def test_the_bound_of_a_path():
    assert size_limit("a/nb.ipynb", FILE_BYTES, NOTEBOOK_BYTES) == NOTEBOOK_BYTES
    assert size_limit("a/NB.IPYNB", FILE_BYTES, NOTEBOOK_BYTES) == NOTEBOOK_BYTES
    assert size_limit("a/ipynb.py", FILE_BYTES, NOTEBOOK_BYTES) == FILE_BYTES
    assert size_limit("a/nb.ipynb", FILE_BYTES, None) == FILE_BYTES  # no notebook bound given: the file bound


def test_local_folders(tmp_path):
    write(str(tmp_path / "repos" / "r" / "nb.IPYNB"), NOTEBOOK)
    write(str(tmp_path / "repos" / "r" / "big.py"), CODE)
    records = [out for ref in list_repos(str(tmp_path / "repos")) for out in read_repo(ref, FILE_BYTES, NOTEBOOK_BYTES)]
    assert outcome(records) == EXPECTED


def test_crawled_archives():
    data = make_tarball("o-r-ccccccc", {"nb.IPYNB": NOTEBOOK, "big.py": CODE}, comment="c" * 40)
    info = RepoInfo("github", "o/r", "c" * 40, "MIT", 1, "github")
    assert outcome(read_archive(info, data, ArchiveLimits(), FILE_BYTES, NOTEBOOK_BYTES)) == EXPECTED


def test_a_crawls_state_is_keyed_by_the_notebook_bound_too():
    section = GitHubSource()
    assert crawl_key("github", section, FILE_BYTES, NOTEBOOK_BYTES) != crawl_key(
        "github", section, FILE_BYTES, 2 * NOTEBOOK_BYTES
    )


def bigquery_result(path: str, data: bytes) -> dict:
    """A row of the query's result table; the query leaves content out over the path's bound."""
    limit = NOTEBOOK_BYTES if path.lower().endswith(".ipynb") else FILE_BYTES
    content = data.decode() if len(data) <= limit else None
    row = dict(repo_name="o/r", ref="refs/heads/main", path=path, license="mit", is_symlink=False, binary=False)
    return {**row, "size": len(data), "content": content}


def test_bigquery_rows_and_the_query():
    records = [
        bigquery_row(bigquery_result(p, d), FILE_BYTES, NOTEBOOK_BYTES) for p, d in (("nb.IPYNB", NOTEBOOK), ("big.py", CODE))
    ]
    assert outcome(records) == EXPECTED
    params = {p.name: getattr(p, "value", None) for p in query_parameters(BigQuerySource(), FILE_BYTES, NOTEBOOK_BYTES)}
    assert (params["max_file_bytes"], params["max_notebook_bytes"]) == (FILE_BYTES, NOTEBOOK_BYTES)
    with open(SQL_FILE, encoding="utf-8") as f:
        sql = f.read()
    assert "IF(ENDS_WITH(LOWER(f.path), '.ipynb'), @max_notebook_bytes, @max_file_bytes)" in sql


def test_dataset_rows():
    row = stack_rows(files_per_package=1)[0]
    records = [
        dataset_row({**row, "max_stars_repo_path": path, "content": data.decode()}, V1, "f row 0", FILE_BYTES, NOTEBOOK_BYTES)
        for path, data in (("nb.IPYNB", NOTEBOOK), ("big.py", CODE))
    ]
    assert {r.path: r.reason if isinstance(r, Rejected) else "kept" for r in records} == {
        "nb.IPYNB": "kept",
        "big.py": "too-large",
    }
    assert records[1].detail.endswith(f"{len(CODE)} bytes > {FILE_BYTES}")


def test_the_config_bounds_reach_the_dataset_and_bigquery_readers(tmp_path):
    write_parquet(stack_rows(files_per_package=1)[:2], str(tmp_path / "data" / "a.parquet"))
    (tmp_path / "c.yaml").write_text(
        "name: x\nsources:\n  datasets:\n    - {name: d, preset: the-stack-v1, paths: [data/a.parquet]}\n"
        f"read:\n  max_file_bytes: {FILE_BYTES}\n  max_notebook_bytes: {NOTEBOOK_BYTES}\n"
    )
    config = load_config(str(tmp_path / "c.yaml"))
    ((name, source),) = network_sources(config, str(tmp_path / "out"))
    assert name == "datasets" and source.sizes == (FILE_BYTES, NOTEBOOK_BYTES)
