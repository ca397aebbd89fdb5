"""The README's main command on the bundled sample, under both DirectRunner modes."""

from __future__ import annotations

import hashlib
import json
import os

import pyarrow.parquet as pq
import pytest

from tests.conftest import DIRECT_MODES, EXAMPLES, SAMPLE_REPOS, run_cli

pytestmark = pytest.mark.slow  # every test here runs the pipeline on the whole sample


def sample_facts() -> dict:
    """What the sample holds, worked out from the files on disk (not from the pipeline)."""
    facts = {"files": 0, "binary": 0, "not-utf8": 0, "unlicensed_files": 0}
    unlicensed_repos = {"gpl-app", "scratch"}  # GPL-3.0 and no license at all
    for repo in os.listdir(SAMPLE_REPOS):
        for dirpath, _, names in os.walk(os.path.join(SAMPLE_REPOS, repo)):
            for name in names:
                data = open(os.path.join(dirpath, name), "rb").read()
                facts["files"] += 1
                if b"\0" in data:
                    facts["binary"] += 1
                    continue
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    facts["not-utf8"] += 1
                    continue
                if repo in unlicensed_repos:
                    facts["unlicensed_files"] += 1
    return facts


@pytest.mark.parametrize("mode", sorted(DIRECT_MODES))
def test_main_command_accounts_for_every_sample_file(sample_version, mode):
    version, proc = sample_version(mode)
    manifest = json.loads((version / "manifest.json").read_text())
    counts = manifest["counts"]
    facts = sample_facts()

    assert counts["read"]["in"] == facts["files"]
    assert counts["read"]["rejected"]["binary"] == facts["binary"] == 1
    assert counts["read"]["rejected"]["not-utf8"] == facts["not-utf8"] == 1
    assert counts["license"]["rejected"] == {"license": facts["unlicensed_files"]}
    for stage, c in counts.items():
        assert c["in"] == c["kept"] + sum(c["rejected"].values()), stage

    documents = pq.read_table(version / "documents").to_pylist()
    assert len(documents) == manifest["documents"]
    assert sum(d["kind"] != "stackoverflow" for d in documents) == counts[manifest["flow"][0][-1]]["kept"]
    assert not {d["repo"] for d in documents} & {"freedom/gpl-app", "someone/scratch"}
    assert {d["license"] for d in documents if d["kind"] != "stackoverflow"} <= {
        "MIT",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
    }
    rejected = pq.read_table(version / "rejected").to_pylist()
    gpl = [r for r in rejected if r["repo"] == "freedom/gpl-app"]
    assert gpl and all(r["stage"] == "license" and r["reason"] == "license" for r in gpl)
    assert "GPL-3.0" in gpl[0]["detail"]

    for rel, info in manifest["files"].items():
        data = (version / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["bytes"], rel
    assert "license" in proc.stdout and "read" in proc.stdout  # the closing summary table
    # A quiet run: what went wrong with an input is in rejected/, not in the log.
    assert not [line for line in proc.stderr.splitlines() if " WARNING " in line or " ERROR " in line], proc.stderr


def test_rerun_is_byte_identical(sample_version):
    (a, _), (b, _) = sample_version("in_memory"), sample_version("multi_processing")
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file() and p.name != "run.json")
    assert names == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file() and p.name != "run.json")
    assert "manifest.json" in names and any(n.startswith("documents/") for n in names)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_inspect_prints_counts_table(sample_version):
    shown = run_cli("inspect", str(sample_version()[0])).stdout
    assert "config hash" in shown
    assert "license=4" in shown.replace(" ", "")
    assert "documents/part-00000-of-00002.parquet" in shown


def test_a_run_names_its_version_as_out_was_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "so.yaml"  # the sample's StackOverflow dump alone: versions, not content, are tested here
    config.write_text(f"name: so\nsources:\n  stackoverflow: [{os.path.join(EXAMPLES, 'stackoverflow')}]\n")
    first = run_cli("run", "--config", str(config), "--out", "datasets", "--stages", "corpus")
    assert "so v0001 written to datasets/so/v0001\n" in first.stdout  # as --out was given
    assert os.listdir(tmp_path / "datasets" / "so") == ["v0001"]
