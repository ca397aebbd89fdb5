"""API tokens never leave the request header, even when a server echoes them back.

The fake APIs (real HTTP servers on 127.0.0.1) answer some requests with errors whose
bodies quote the token, as a misbehaving proxy or API might. The run logs at DEBUG;
every output file (crawl state decompressed), every log line and the error text of a
failed run are searched for the token.
"""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import run_cli
from tests.transforms.sources.network_fakes import FakeGitHub, FakeRepo
from tests.transforms.sources.test_network_pipeline import FAST_HTTP, all_text, code

pytestmark = pytest.mark.slow  # runs the pipeline against an API server

TOKEN = "ghp_HOSTILEsecret0123456789abcdefABCDEF"
TOKEN_ENV = "HOSTILE_TEST_GITHUB_TOKEN"


@pytest.fixture
def github(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    repos = [FakeRepo(f"o/{name}", {f"{name}.py": code(name)}, stars=5) for name in ("ok", "broken", "gone", "flaky")]
    fake = FakeGitHub(repos, token=TOKEN)
    yield fake
    fake.close()


def write_config(tmp_path, url: str) -> str:
    source = {"base_url": url, "token_env": TOKEN_ENV, "languages": ["Python"], "licenses": ["MIT"], "http": FAST_HTTP}
    path = tmp_path / "crawl.yaml"
    path.write_text(yaml.safe_dump({"name": "secrets", "sources": {"github": source}, "output": {"document_shards": 1}}))
    return str(path)


def test_echoed_tokens_stay_out_of_outputs_logs_and_rejections(tmp_path, github):
    echo = {"message": f"upstream failed for Authorization: token {TOKEN}"}
    github.fault("search", None, (502, {"X-Debug-Token": TOKEN}, f"<html>bad gateway for {TOKEN}</html>"))
    github.fault("commits", "o/broken", *[(500, {}, echo)] * (FAST_HTTP["max_retries"] + 1))
    github.fault("commits", "o/gone", (404, {}, {"message": f"Not Found: {TOKEN}"}))
    github.fault("archive", "o/flaky", (503, {"Retry-After": "0"}, echo))
    out = tmp_path / "datasets"
    proc = run_cli("--log-level", "DEBUG", "run", "--config", write_config(tmp_path, github.url), "--out", str(out))
    assert not github.auth_failures
    text = all_text(out)
    # The echoes did reach the rejections and the log, with the token replaced.
    assert "Not Found: ***" in text and "Authorization: token ***" in text
    assert "bad gateway for ***" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    assert TOKEN not in text


def test_a_refused_token_fails_the_run_without_printing_it(tmp_path, github):
    github.fault("search", None, (401, {"WWW-Authenticate": f"token {TOKEN}"}, {"message": f"Bad credentials: {TOKEN}"}))
    out = tmp_path / "datasets"
    proc = run_cli("--log-level", "DEBUG", "run", "--config", write_config(tmp_path, github.url), "--out", str(out), check=False)
    assert proc.returncode != 0 and "token_env" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    assert TOKEN not in all_text(tmp_path)
