"""A run scrubs code files and StackOverflow threads, and its manifest counts every replacement kind."""

from __future__ import annotations

import json
import os
import shutil
from xml.sax.saxutils import quoteattr

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import SAMPLE_REPOS, run_cli

AWS_KEY = "AKIA" + "Z7VRSQ5TJKF3Q2BN"  # made up, in the AWS key-id format
PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY-----"
CODE = f'''"""Deploy settings. Questions: Ops.Team@Example.Engineering"""
AWS_ACCESS_KEY_ID = "{AWS_KEY}"
SIGNING_KEY = """{PEM}"""
UPSTREAM = "93.184.216.34"
LOCAL = "127.0.0.1"
'''


def row(**attrs) -> str:
    return "  <row " + " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items()) + " />\n"


def write_dump(folder) -> None:
    folder.mkdir()
    posts = [
        row(Id=1, PostTypeId=1, CreationDate="2020-01-01T00:00:00.000", Score=1, Title="Who runs 185.199.108.153?",
            Body="<p>Write to dns-admin@google.com</p>", Tags="<dns>"),
        row(Id=2, PostTypeId=2, ParentId=1, CreationDate="2020-01-02T00:00:00.000", Score=2,
            Body="<p>Nobody you can mail.</p>"),
    ]  # fmt: skip
    comments = [row(Id=1, PostId=2, Score=0, Text="try noc@example.berlin", CreationDate="2020-01-03T00:00:00.000")]
    (folder / "Posts.xml").write_text('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "".join(posts) + "</posts>\n")
    (folder / "Comments.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<comments>\n' + "".join(comments) + "</comments>\n"
    )


@pytest.mark.slow
def test_manifest_counts_every_replacement_kind(tmp_path):
    repo = tmp_path / "repos" / "deploy"
    repo.mkdir(parents=True)
    shutil.copy(os.path.join(SAMPLE_REPOS, "textkit", "LICENSE"), repo / "LICENSE")
    (repo / "settings.py").write_text(CODE)
    write_dump(tmp_path / "site.example")
    config = tmp_path / "run.yaml"
    sources = {"local": [{"path": "repos"}], "stackoverflow": ["site.example"]}
    config.write_text(yaml.safe_dump({"name": "pii", "sources": sources, "output": {"document_shards": 1}}))
    run_cli("run", "--config", str(config), "--out", str(tmp_path / "out"), "--direct_running_mode=in_memory")
    version = tmp_path / "out" / "pii" / "v0001"
    counts = json.loads((version / "manifest.json").read_text())["counts"]
    assert counts["scrub"]["stats"] == {
        "replaced-email": 1,
        "replaced-aws-key-id": 1,
        "replaced-private-key": 1,
        "replaced-ipv4": 1,
        "files-changed": 1,
    }
    assert counts["stackoverflow-format"]["stats"] == {"replaced-email": 2, "replaced-ipv4": 1, "documents-changed": 1}
    texts = "\n".join(pq.read_table(version / "documents").column("text").to_pylist())
    for secret in ("Example.Engineering", AWS_KEY, "MHcCAQ", "93.184.216.34", "185.199.108.153", "dns-admin", "noc@"):
        assert secret not in texts
    assert '"127.0.0.1"' in texts
