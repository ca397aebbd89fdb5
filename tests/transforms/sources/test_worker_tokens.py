"""Crawl tokens from Google Secret Manager (google-cloud-secret-manager over REST, against a local server)."""

from __future__ import annotations

import pickle

import pytest
import yaml

from schemas.errors import ConfigError
from schemas.sources_config import GitHubSource, HttpSettings
from tests.conftest import run_cli
from tests.transforms.sources.network_fakes import FakeGitHub, FakeRepo, FakeSecretManager
from transforms.sources.crawl.github import GitHubHost
from transforms.sources.crawl.source import FetchRepoFn
from transforms.sources.secret_manager import check_worker_token

TOKEN = "ghp_fromSECRETmanager000000000000000000"
SECRET = "projects/test-project/secrets/github-token/versions/latest"
FAST = HttpSettings(max_retries=1, backoff_seconds=0.0, max_backoff_seconds=0.0, timeout_seconds=5.0)
DATAFLOW = ["--runner", "DataflowRunner", "--project", "p", "--region", "us-central1", "--temp_location", "gs://b/tmp"]


@pytest.fixture
def servers():
    made = []
    yield made
    for server in made:
        server.close()


def test_workers_read_the_token_from_the_secret_in_setup(servers, tmp_path):
    secrets = FakeSecretManager({SECRET: TOKEN + "\n"})
    github = FakeGitHub([FakeRepo("o/app", {"a.py": b"a\n"})], token=TOKEN)
    servers += [secrets, github]
    section = GitHubSource(
        base_url=github.url,
        token_env=None,
        token_secret=SECRET,
        secret_api_endpoint=secrets.url,
        languages=("Python",),
        licenses=("MIT",),
        http=FAST,
    )
    fn = FetchRepoFn(GitHubHost, section, str(tmp_path), 1000)
    assert TOKEN.encode() not in pickle.dumps(fn)  # the graph holds the secret's name only
    assert not secrets.accessed
    fn.setup()
    assert secrets.accessed == [SECRET]
    client = fn.make_hosts(0).get().client
    assert (
        client.authenticated
        and client.get(
            "search/repositories", {"q": 'language:"Python" license:mit fork:false created:2000-01-01..2030-01-01'}
        ).status
        == 200
    )
    assert not github.auth_failures and TOKEN not in repr(client)


def test_check_worker_token_names_the_key_and_the_fix(servers):
    secrets = FakeSecretManager({SECRET: TOKEN})
    servers.append(secrets)
    base = {"base_url": "http://127.0.0.1:9", "secret_api_endpoint": secrets.url}
    with pytest.raises(ConfigError, match=r"sources.github.token_secret: Dataflow workers do not see"):
        check_worker_token(GitHubSource(**base), "sources.github")
    missing = "projects/test-project/secrets/nope/versions/1"
    with pytest.raises(ConfigError, match=r"sources.github.token_secret: cannot read .*nope.*secretAccessor"):
        check_worker_token(GitHubSource(**base, token_secret=missing), "sources.github")
    check_worker_token(GitHubSource(**base, token_secret=SECRET), "sources.github")  # readable: no error
    with pytest.raises(ConfigError, match="must name a secret version"):
        GitHubSource(token_secret="github-token")

    with pytest.raises(ConfigError, match=r"sources.github.extra_tokens\[0\]: Dataflow workers do not see"):
        check_worker_token(GitHubSource(**base, token_secret=SECRET, extra_tokens=("GITHUB_TOKEN_2",)), "sources.github")
    with pytest.raises(ConfigError, match=r"sources.github.extra_tokens\[0\]: cannot read .*nope"):
        check_worker_token(GitHubSource(**base, token_secret=SECRET, extra_tokens=(missing,)), "sources.github")
    check_worker_token(GitHubSource(**base, token_secret=SECRET, extra_tokens=(SECRET,)), "sources.github")


@pytest.mark.slow
@pytest.mark.parametrize("secret", [None, "projects/test-project/secrets/nope/versions/latest"], ids=["unset", "unreachable"])
def test_a_dataflow_crawl_without_a_reachable_secret_stops_before_submitting(servers, tmp_path, secret):
    secrets = FakeSecretManager({SECRET: TOKEN})
    github = FakeGitHub([FakeRepo("o/app", {"a.py": b"a\n"})], token=TOKEN)
    servers += [secrets, github]
    section = {
        "base_url": github.url,
        "languages": ["Python"],
        "licenses": ["MIT"],
        "state_dir": "gs://b/crawl",
        "secret_api_endpoint": secrets.url,
    }
    if secret:
        section["token_secret"] = secret
    config = tmp_path / "crawl.yaml"
    config.write_text(yaml.safe_dump({"name": "crawl", "sources": {"github": section}}))
    proc = run_cli("run", "--config", str(config), "--out", "gs://b/datasets", *DATAFLOW, check=False)
    assert proc.returncode != 0 and "error: sources.github.token_secret:" in proc.stderr
    assert ("would run unauthenticated" if secret is None else "cannot read") in proc.stderr
    assert not github.hits  # stopped before the listing, let alone a submission
