"""Bad network-source settings fail before any work, naming the key to change."""

from __future__ import annotations

import pytest
import yaml

from schemas.config import ConfigError, load_config
from tests.transforms.sources.network_fakes import FakeGitHub, FakeRepo
from transforms.sources.registry import network_sources


def config_with(tmp_path, sources: dict):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "n", "sources": sources}))
    return load_config(str(path))


@pytest.mark.parametrize(
    "sources, message",
    [
        ({"github": {"commits_until": "last week"}}, "sources.github: commits_until must be an ISO 8601"),
        ({"gitlab": {"http": {"max_retries": -1}}}, "sources.gitlab.http: max_retries"),
        ({"github": {"base_url": "api.github.com"}}, "base_url must start with http"),
        ({"github": {"limits": {"max_members": 0}}}, "sources.github.limits: max_members"),
        ({"bigquery": {"anonymous": True}}, "anonymous: true needs a project"),
        ({"bigquery": {"dataset": "x; DROP TABLE y"}}, "dataset must look like project.dataset"),
        ({"github": {"token": "abc"}}, "unknown key(s) ['token']"),
    ],
)
def test_bad_settings_name_their_key(tmp_path, sources, message):
    with pytest.raises(ConfigError) as e:
        config_with(tmp_path, sources)
    assert message in str(e.value)


def test_license_without_an_api_key_fails_before_listing(tmp_path):
    fake = FakeGitHub([FakeRepo("o/r", {})])
    try:
        config = config_with(tmp_path, {"github": {"base_url": fake.url, "token_env": None, "licenses": ["WTFPL"]}})
        with pytest.raises(ConfigError, match=r"sources.github.licenses: no API license key for \['WTFPL'\]"):
            network_sources(config, str(tmp_path / "out"))
        assert not fake.hits
    finally:
        fake.close()


def test_a_refused_token_stops_the_run_at_the_listing(tmp_path, monkeypatch):
    monkeypatch.setenv("CRAWL_TEST_BAD_TOKEN", "ghp_wrong")
    fake = FakeGitHub([FakeRepo("o/r", {})], token="ghp_right")
    try:
        config = config_with(tmp_path, {"github": {"base_url": fake.url, "token_env": "CRAWL_TEST_BAD_TOKEN"}})
        with pytest.raises(ConfigError, match="sources.github.token_env: the API refused the token") as e:
            network_sources(config, str(tmp_path / "out"))
        assert "ghp_wrong" not in str(e.value)
    finally:
        fake.close()
