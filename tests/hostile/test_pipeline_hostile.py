"""Every hostile input at once through `code-corpus run`: the run finishes and accounts for each.

The corpus stage reads the hostile repositories and the hostile Stack Exchange dump;
the run must complete (its own checks: in = kept + rejected per stage), write only
under its output directory, never copy the secret from outside into any output, and
leave one Rejected with the expected stage and reason for every hostile file.
"""

from __future__ import annotations

import glob
import os

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import run_cli
from tests.hostile.hostile_inputs import SECRET, billion_laughs_dump, hostile_repos, make_outside
from tests.hostile.test_local_hostile import tree_state

pytestmark = pytest.mark.slow  # runs the pipeline on hostile input


def test_a_run_over_every_hostile_input_completes_and_rejects_each_with_a_reason(tmp_path):
    outside = make_outside(str(tmp_path))
    repos = tmp_path / "work" / "repos"
    repos.mkdir(parents=True)
    expected = hostile_repos(str(repos), outside)
    hostile_rows = billion_laughs_dump(str(tmp_path / "work" / "site.example"), os.path.join(outside, "secret.py"))
    config = tmp_path / "work" / "hostile.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "hostile",
                "sources": {"local": [{"path": "repos"}], "stackoverflow": ["site.example"]},
                "output": {"document_shards": 1},
            }
        )
    )
    before = tree_state(str(tmp_path))
    out = tmp_path / "work" / "datasets"
    run_cli("run", "--config", str(config), "--out", str(out), "--direct_running_mode=in_memory")

    after = tree_state(str(tmp_path))
    written = {p for p in after if p not in before or (after[p] != before[p] and not os.path.isdir(p))}
    assert all(path.startswith(str(out)) for path in written), sorted(p for p in written if not p.startswith(str(out)))
    for path in glob.glob(str(out / "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                assert SECRET.encode() not in f.read(), path

    (version,) = glob.glob(str(out / "hostile" / "v*"))
    rejected = pq.read_table(os.path.join(version, "rejected")).to_pylist()
    found = {(r["repo"], r["path"]): (r["stage"], r["reason"]) for r in rejected if r["source"] == "local"}
    for repo, files in expected.items():
        for path, outcome in files.items():
            assert found.get((repo, path)) == outcome, (repo, path, found.get((repo, path)))
    stack = [r for r in rejected if r["source"] == "stackoverflow" and r["reason"] == "broken-xml"]
    assert {(r["path"], int(r["detail"].split(" at byte ")[1].split(":")[0])) for r in stack} == hostile_rows

    documents = pq.read_table(os.path.join(version, "documents")).to_pylist()
    assert {(d["repo"], d["path"]) for d in documents if d["kind"] != "stackoverflow"} == {
        ("links", "ok.py"),
        ("notebooks", "many_cells.ipynb"),
    }
    assert [d["kind"] for d in documents if d["kind"] == "stackoverflow"] == ["stackoverflow"]
