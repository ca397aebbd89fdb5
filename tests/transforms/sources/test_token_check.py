"""Tokens are checked in the launcher (GitHub `GET /rate_limit`, GitLab `GET /user`) before any worker starts."""

from __future__ import annotations

import pytest
import yaml

from schemas.errors import ConfigError
from tests.conftest import run_cli
from tests.transforms.sources.network_fakes import FakeGitHub, FakeRepo
from tests.transforms.sources.test_github_source import TOKEN_ENV as GITHUB_ENV
from tests.transforms.sources.test_github_source import github  # noqa: F401 (fixture)
from tests.transforms.sources.test_github_source import host_for as github_host
from tests.transforms.sources.test_gitlab_source import TOKEN_ENV as GITLAB_ENV
from tests.transforms.sources.test_gitlab_source import gitlab  # noqa: F401 (fixture)
from tests.transforms.sources.test_gitlab_source import host_for as gitlab_host
from tests.transforms.sources.test_network_pipeline import GITHUB_TOKEN, code, servers, write_config  # noqa: F401


def test_a_valid_github_token_is_checked_without_spending_the_budget(github):  # noqa: F811
    fake = github([FakeRepo("o/a", {"a.py": b"a\n"})])
    answer = github_host(fake).check_token()
    assert answer["resources"]["core"]["remaining"] == 5000
    assert fake.hits[("rate_limit", None)] == 1 and not fake.auth_failures


@pytest.mark.parametrize(
    "host_for, fixture, env",
    [(github_host, "github", GITHUB_ENV), (gitlab_host, "gitlab", GITLAB_ENV)],
    ids=["github-rate-limit", "gitlab-user"],
)
def test_a_refused_token_stops_the_launcher_naming_the_key(request, monkeypatch, host_for, fixture, env):
    fake = request.getfixturevalue(fixture)([FakeRepo("o/a", {"a.py": b"a\n"})])
    monkeypatch.setenv(env, "revoked-token-value")
    host = host_for(fake)
    with pytest.raises(ConfigError) as caught:
        host.check_token()
    assert f"sources.{fixture}.token_env" in str(caught.value) and "refused the token" in str(caught.value)
    assert "revoked-token-value" not in str(caught.value)
    assert sum(fake.hits.values()) == 1  # the one check, nothing else


@pytest.mark.slow
@pytest.mark.parametrize("revoked, key", [("first", "token_env"), ("extra", "extra_tokens[0]")])
def test_a_run_with_a_revoked_token_stops_before_any_listing_or_fetch(tmp_path, servers, monkeypatch, revoked, key):  # noqa: F811
    fake = FakeGitHub([FakeRepo("o/a", {"a.py": code("a")})], token=GITHUB_TOKEN)
    servers.append(fake)
    path = write_config(tmp_path, github=fake)
    config = yaml.safe_load(open(path))
    config["sources"]["github"]["extra_tokens"] = ["CRAWL_TEST_GITHUB_TOKEN_2"]
    yaml.safe_dump(config, open(path, "w"))
    bad = "ghp_revokedREVOKEDrevoked0000000000000"
    monkeypatch.setenv("CRAWL_TEST_GITHUB_TOKEN_2", bad if revoked == "extra" else GITHUB_TOKEN)
    if revoked == "first":
        monkeypatch.setenv("CRAWL_TEST_GITHUB_TOKEN", bad)
    proc = run_cli("run", "--config", path, "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode != 0
    assert f"sources.github.{key}: the API refused the token" in proc.stderr and bad not in proc.stderr
    assert set(fake.hits) == {("rate_limit", None)}  # checks only: no search, no fetch
