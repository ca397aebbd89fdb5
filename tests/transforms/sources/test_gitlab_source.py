"""The GitLab host against a local server answering like REST v4: projects, license, languages, archive."""

from __future__ import annotations

import os

import pytest

from schemas.records import Rejected, RepoFile, RepoSnapshot
from schemas.sources_config import GitLabSource, HttpSettings
from tests.conftest import SAMPLE_REPOS
from tests.transforms.sources.network_fakes import FakeGitLab, FakeRepo
from transforms.sources.crawl.gitlab import GitLabHost
from transforms.sources.crawl.source import fetch_repo
from transforms.sources.crawl.state import CrawlState

TOKEN = "glpat-testTOKEN00000000000"
TOKEN_ENV = "CRAWL_TEST_GITLAB_TOKEN"
FAST = HttpSettings(max_retries=2, backoff_seconds=0.0, max_backoff_seconds=0.0, timeout_seconds=5.0)
MIT = open(os.path.join(SAMPLE_REPOS, "textkit", "LICENSE"), "rb").read()


@pytest.fixture
def gitlab(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    fakes = []

    def make(repos, **kwargs):
        fake = FakeGitLab(repos, token=TOKEN, **kwargs)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.close()


def host_for(fake: FakeGitLab, **section) -> GitLabHost:
    settings = {"base_url": fake.url + "/api/v4", "token_env": TOKEN_ENV, "http": FAST, "languages": ("Python",)}
    section = GitLabSource(**{**settings, **section})
    return GitLabHost(section, GitLabHost.make_client(section, seed=0))


def projects(n: int) -> list[FakeRepo]:
    return [FakeRepo(f"group/p{i:03d}", {"m.py": b"m\n"}) for i in range(n)]


@pytest.mark.parametrize("keyset", [True, False], ids=["keyset-link", "offset-x-next-page"])
def test_listing_follows_either_pagination_and_leaves_out_forks(gitlab, tmp_path, keyset):
    repos = projects(205) + [FakeRepo("group/fork", {}, fork=True), FakeRepo("group/rusty", {}, language="Rust")]
    fake = gitlab(repos, keyset=keyset)
    listing = host_for(fake).list_repositories(CrawlState(str(tmp_path)))
    assert sorted(listing.repos) == [r.name for r in repos[:205]]
    assert fake.hits[("projects", None)] == 3 and not fake.auth_failures
    first = listing.repos["group/p000"]
    assert first.api_id == str(repos[0].project_id) and first.license is None


def test_fetch_takes_license_and_stars_from_the_project_endpoint(gitlab, tmp_path):
    repo = FakeRepo("group/lib", {"lib.py": b"x = 1\n"}, license="apache-2.0", stars=7, languages={"Python": 80.5, "Shell": 19.5})
    fake = gitlab([repo])
    host = host_for(fake, licenses=("MIT", "Apache-2.0"))
    state = CrawlState(str(tmp_path))
    listed = host.list_repositories(state).repos["group/lib"]
    out = list(fetch_repo(host, listed, state, 1000))
    (lib,) = [r for r in out if isinstance(r, RepoFile)]
    assert (lib.source, lib.origin, lib.license, lib.stars, lib.revision) == ("gitlab", "gitlab", "Apache-2.0", 7, repo.sha)
    assert out[-1] == RepoSnapshot("gitlab", "group/lib", repo.sha, "Apache-2.0", 7, 1)


def test_unknown_license_is_detected_from_the_archive(gitlab, tmp_path):
    fake = gitlab([FakeRepo("group/nolic", {"LICENSE": MIT, "a.py": b"a\n"}, license=None)])
    host = host_for(fake)
    state = CrawlState(str(tmp_path))
    out = list(fetch_repo(host, host.list_repositories(state).repos["group/nolic"], state, 10_000))
    assert {r.license for r in out if isinstance(r, RepoFile)} == {"MIT"}


@pytest.mark.parametrize(
    "repo, reason",
    [
        (FakeRepo("group/gpl", {"a.py": b"a\n"}, license="gpl-3.0"), "license-not-allowed"),
        (FakeRepo("group/wtfpl", {"a.py": b"a\n"}, license="wtfpl"), "license-not-allowed"),  # a key with no SPDX mapping
        (FakeRepo("group/mostly-js", {"a.py": b"a\n"}, languages={"JavaScript": 70.0, "Python": 30.0}), "not-main-language"),
        (FakeRepo("group/gone", {"a.py": b"a\n"}, vanished=True), "vanished"),
        (FakeRepo("group/empty", {}, empty=True), "empty-repository"),
    ],
    ids=lambda x: x if isinstance(x, str) else x.name,
)
def test_projects_rejected_before_their_archive(gitlab, tmp_path, repo, reason):
    fake = gitlab([repo])
    host = host_for(fake)
    state = CrawlState(str(tmp_path))
    (rejected,) = list(fetch_repo(host, host.list_repositories(state).repos[repo.name], state, 1000))
    assert isinstance(rejected, Rejected) and rejected.reason == reason and rejected.repo == repo.name
    assert fake.hits[("archive", repo.name)] == 0


def test_429_with_retry_after_is_retried(gitlab, tmp_path):
    repo = FakeRepo("group/busy", {"a.py": b"a\n"})
    fake = gitlab([repo])
    fake.fault("archive", "group/busy", (429, {"Retry-After": "0"}, {"message": "429 Too Many Requests"}))
    host = host_for(fake)
    state = CrawlState(str(tmp_path))
    out = list(fetch_repo(host, host.list_repositories(state).repos["group/busy"], state, 1000))
    assert [r.path for r in out if isinstance(r, RepoFile)] == ["a.py"]
    assert fake.hits[("archive", "group/busy")] == 2 and host.client.retries == 1


def test_the_token_goes_as_bearer_and_is_dropped_on_a_redirect_to_another_host(gitlab, tmp_path):
    repo = FakeRepo("group/cdn", {"a.py": b"a\n"})
    fake = gitlab([repo])
    fake.redirect_archives = True  # the archive is served from localhost, not the API's 127.0.0.1
    host = host_for(fake)
    state = CrawlState(str(tmp_path))
    out = list(fetch_repo(host, host.list_repositories(state).repos["group/cdn"], state, 1000))
    assert [r.path for r in out if isinstance(r, RepoFile)] == ["a.py"]
    assert fake.hits[("project", "group/cdn")] == 1 and not fake.auth_failures


def test_a_fork_listed_without_a_token_is_refused_from_its_project_answer(gitlab, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(TOKEN_ENV)
    fake = gitlab([FakeRepo("group/own", {"a.py": b"a\n"}), FakeRepo("group/fork", {"f.py": b"f\n"}, fork=True)])
    host = host_for(fake)
    state = CrawlState(str(tmp_path))
    listing = host.list_repositories(state)
    assert "simple fields" in caplog.text and "forks" in caplog.text
    assert sorted(listing.repos) == ["group/fork", "group/own"]  # the simple fields do not say which is a fork
    (rejected,) = list(fetch_repo(host, listing.repos["group/fork"], state, 1000))
    assert isinstance(rejected, Rejected) and rejected.reason == "fork"
    assert fake.hits[("archive", "group/fork")] == 0
    own = list(fetch_repo(host, listing.repos["group/own"], state, 1000))
    assert [r.path for r in own if isinstance(r, RepoFile)] == ["a.py"]


def test_the_snapshot_date_keeps_projects_that_existed_then_however_active_since(gitlab, tmp_path):
    maintained = FakeRepo(
        "group/maintained", {"a.py": b"a\n"}, created_at="2019-05-01T10:00:00.000Z", last_activity_at="2024-03-02T08:00:00.000Z"
    )  # active long after the snapshot date
    abandoned = FakeRepo("group/abandoned", {"b.py": b"b\n"}, created_at="2018-01-01T00:00:00.000Z")
    newer = FakeRepo("group/newer", {"c.py": b"c\n"}, created_at="2022-06-01T00:00:00.000Z")  # did not exist then
    fake = gitlab([maintained, abandoned, newer])
    listing = host_for(fake).list_repositories(CrawlState(str(tmp_path)))  # created_until: the paper's 2021-12-09
    assert sorted(listing.repos) == ["group/abandoned", "group/maintained"]
    assert listing.facts["left_out_by_date"] == 1
    # What last_activity_before (the old default) lists: only what was abandoned since.
    inactive = host_for(fake, active_until="2021-12-09T23:59:59Z").list_repositories(CrawlState(str(tmp_path / "old")))
    assert sorted(inactive.repos) == ["group/abandoned"]
