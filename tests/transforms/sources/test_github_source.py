"""The GitHub host against a local server answering like REST v3: search, commits, tarballs."""

from __future__ import annotations

import dataclasses
import datetime
import os

import pytest

from schemas.records import Rejected, RepoFile, RepoSnapshot
from schemas.sources_config import ArchiveLimits, GitHubSource, HttpSettings
from tests.transforms.sources.network_fakes import FakeGitHub, FakeRepo
from transforms.sources.crawl.github import GitHubHost
from transforms.sources.crawl.hosts import RemoteRepo
from transforms.sources.crawl.source import fetch_repo
from transforms.sources.crawl.state import CrawlState

TOKEN = "ghp_testTOKEN0000000000000000000000000"
TOKEN_ENV = "CRAWL_TEST_GITHUB_TOKEN"
FAST = HttpSettings(max_retries=2, backoff_seconds=0.0, max_backoff_seconds=0.0, timeout_seconds=5.0)


def host_for(fake: FakeGitHub, **section) -> GitHubHost:
    settings = {"base_url": fake.url, "token_env": TOKEN_ENV, "http": FAST, "languages": ("Python",), "licenses": ("MIT",)}
    section = GitHubSource(**{**settings, **section})
    return GitHubHost(section, GitHubHost.make_client(section, seed=0))


@pytest.fixture
def github(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    fakes = []

    def make(repos, **kwargs):
        fake = FakeGitHub(repos, token=TOKEN, **kwargs)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.close()


def spread(n: int, prefix: str = "o/r") -> list[FakeRepo]:
    """n repositories created six hours apart from 2020 on (the cap test needs more than 1000)."""
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    return [
        FakeRepo(
            f"{prefix}{i:04d}",
            {"a.py": b"a\n"},
            created_at=(start + datetime.timedelta(hours=6 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        for i in range(n)
    ]


def test_listing_follows_link_pages_and_leaves_out_forks_and_other_licenses(github, tmp_path):
    repos = spread(230) + [
        FakeRepo("f/fork", {}, fork=True),
        FakeRepo("g/gpl", {}, license="gpl-3.0"),
        FakeRepo("j/js", {}, language="JavaScript", stars=9),
    ]
    fake = github(repos)
    listing = host_for(fake).list_repositories(CrawlState(str(tmp_path)))
    assert sorted(listing.repos) == sorted(r.name for r in repos[:230])
    assert fake.hits[("search", None)] == 3  # 100 + 100 + 30, through rel="next"
    first = listing.repos["o/r0000"]
    assert first == RemoteRepo("github", "o/r0000", "o/r0000", "main", 0, "MIT", "2020-01-01T00:00:00Z")
    assert not fake.auth_failures

    both = host_for(fake, languages=("Python", "JavaScript")).list_repositories(CrawlState(str(tmp_path / "b")))
    assert both.repos["j/js"].stars == 9


def test_search_cap_is_handled_by_splitting_the_created_range(github, tmp_path):
    fake = github(spread(1150))
    listing = host_for(fake, created_from="2020-01-01T00:00:00Z", created_until="2020-12-31T23:59:59Z").list_repositories(
        CrawlState(str(tmp_path))
    )
    assert len(listing.repos) == 1150
    assert listing.facts["split_queries"] >= 1 and not listing.notes.get("capped_queries")


def test_listing_resumes_from_state_without_asking_again(github, tmp_path):
    fake = github(spread(150))
    state = CrawlState(str(tmp_path))
    first = host_for(fake).list_repositories(state)
    asked = fake.hits[("search", None)]
    again = host_for(fake).list_repositories(state)
    assert fake.hits[("search", None)] == asked
    assert again.repos == first.repos


def test_max_repositories_stops_the_listing_early(github, tmp_path):
    fake = github(spread(250))
    listing = host_for(fake, max_repositories=120).list_repositories(CrawlState(str(tmp_path)))
    assert len(listing.repos) == 120 and fake.hits[("search", None)] == 2


def test_a_failing_search_page_becomes_a_listing_failure(github, tmp_path):
    fake = github(spread(150))
    fake.fault("search", None, *[(502, {}, {"message": "Server Error"})] * 3)
    listing = host_for(fake).list_repositories(CrawlState(str(tmp_path)))
    assert not listing.repos and len(listing.failures) == 1
    failure = listing.failures[0]
    assert failure.reason == "listing-failed" and "HTTP 502" in failure.detail
    assert failure.rejected().stage == "read"


def test_rate_limit_headers_pace_the_search(github, tmp_path):
    fake = github(spread(250), search_remaining=1)  # the first page spends the window
    host = host_for(fake)
    sleeps = []
    host.client.clock.sleep = sleeps.append  # a window resets a second later; do not wait for real
    listing = host.list_repositories(CrawlState(str(tmp_path)))
    assert len(listing.repos) == 250 and sleeps and all(0 < s <= 3 for s in sleeps)


def test_fetch_pins_the_commit_and_reads_the_tarball_without_sending_the_token_to_codeload(github, tmp_path):
    repo = FakeRepo("o/app", {"app.py": b"print('hi')\n", "README.md": b"# app\n"}, stars=42)
    fake = github([repo])
    host = host_for(fake, commits_until="2021-12-09T23:59:59Z")
    listed = host.list_repositories(CrawlState(str(tmp_path))).repos["o/app"]
    out = list(fetch_repo(host, listed, CrawlState(str(tmp_path)), 1000))
    files = {r.path: r for r in out if isinstance(r, RepoFile)}
    assert set(files) == {"app.py", "README.md"}
    assert files["app.py"].revision == repo.sha and files["app.py"].stars == 42 and files["app.py"].license == "MIT"
    assert out[-1] == RepoSnapshot("github", "o/app", repo.sha, "MIT", 42, 2)
    assert fake.archives_served["o/app"] == 1 and not fake.auth_failures


@pytest.mark.parametrize(
    "fault, reason",
    [({"vanished": True}, "vanished"), ({"empty": True}, "empty-repository")],
)
def test_repository_faults_are_rejected_once_and_remembered(github, tmp_path, fault, reason):
    repo = FakeRepo("o/gone", {"a.py": b"a\n"}, **fault)
    fake = github([repo])
    host = host_for(fake)
    listed = host.list_repositories(CrawlState(str(tmp_path))).repos["o/gone"]
    state = CrawlState(str(tmp_path))
    (rejected,) = list(fetch_repo(host, listed, state, 1000))
    assert isinstance(rejected, Rejected) and rejected.reason == reason and rejected.repo == "o/gone"
    assert list(fetch_repo(host, listed, state, 1000)) == [rejected]
    assert fake.hits[("commits", "o/gone")] == 1  # the second time came from the state


def test_server_errors_after_all_retries_are_not_remembered(github, tmp_path):
    fake = github([FakeRepo("o/flaky", {"a.py": b"a\n"})])
    fake.fault("commits", "o/flaky", *[(502, {}, "<html>Bad Gateway</html>")] * 3)
    host = host_for(fake)
    state = CrawlState(str(tmp_path))
    listed = host.list_repositories(state).repos["o/flaky"]
    (rejected,) = list(fetch_repo(host, listed, state, 1000))
    assert rejected.reason == "http-502"
    retried = list(fetch_repo(host, listed, state, 1000))  # the next run tries again, and now it works
    assert [r.path for r in retried if isinstance(r, RepoFile)] == ["a.py"]


def test_archive_over_the_limit_is_rejected_unread(github, tmp_path):
    fake = github([FakeRepo("o/huge", {"data.py": os.urandom(20_000).hex().encode()})])
    host = host_for(fake, limits=ArchiveLimits(max_archive_bytes=5_000))
    state = CrawlState(str(tmp_path))
    listed = host.list_repositories(state).repos["o/huge"]
    (rejected,) = list(fetch_repo(host, listed, state, 10**6))
    assert rejected.reason == "archive-too-large"


def test_spent_request_budget_rejects_for_now_and_the_next_run_goes_on(github, tmp_path):
    fake = github([FakeRepo("o/a", {"a.py": b"a\n"}), FakeRepo("o/b", {"b.py": b"b\n"})])
    state = CrawlState(str(tmp_path))
    listed = host_for(fake).list_repositories(state).repos
    budget = dataclasses.replace(FAST, request_budget=2)  # a repository takes two: commits, tarball (+ its redirect)
    host = host_for(fake, http=budget)
    first = list(fetch_repo(host, listed["o/a"], state, 1000))
    (stopped,) = list(fetch_repo(host, listed["o/b"], state, 1000))
    assert [r.path for r in first if isinstance(r, RepoFile)] == ["a.py"]
    assert stopped.reason == "request-budget" and state.load_repo("github", "o/b") is None
    resumed = list(fetch_repo(host_for(fake, http=budget), listed["o/b"], state, 1000))
    assert [r.path for r in resumed if isinstance(r, RepoFile)] == ["b.py"]
    assert fake.archives_served == {"o/a": 1, "o/b": 1}


def test_licenses_are_recorded_as_spdx_ids_through_the_license_key(github, tmp_path):
    # GitHub's own spdx_id for gpl-3.0 is "GPL-3.0"; SPDX (and a copyleft allow-list) says GPL-3.0-only.
    fake = github([FakeRepo("o/gpl", {"a.py": b"a\n"}, license="gpl-3.0"), FakeRepo("o/mit", {"m.py": b"m\n"})])
    host = host_for(fake, licenses=("GPL-3.0-only", "MIT"))
    state = CrawlState(str(tmp_path))
    listing = host.list_repositories(state)
    assert {name: r.license for name, r in listing.repos.items()} == {"o/gpl": "GPL-3.0-only", "o/mit": "MIT"}
    out = list(fetch_repo(host, listing.repos["o/gpl"], state, 1000))
    assert {r.license for r in out if isinstance(r, RepoFile)} == {"GPL-3.0-only"}


def test_incomplete_search_pages_are_asked_again(github, tmp_path):
    repos = spread(150)
    fake = github(repos)
    # GitHub's search timed out: a 200 with incomplete_results and only some of the items.
    partial = {"total_count": 150, "incomplete_results": True, "items": [fake.repo_object(r) for r in repos[:10]]}
    fake.fault("search", None, (200, {}, partial), (200, {}, partial))
    host = host_for(fake)
    state = CrawlState(str(tmp_path))
    listing = host.list_repositories(state)
    assert len(listing.repos) == 150
    assert listing.facts["incomplete_pages_retried"] == 2 and not listing.notes.get("incomplete_queries")
    assert fake.hits[("search", None)] == 2 + 2  # two incomplete answers, then the two pages
    assert len(host_for(fake).list_repositories(state).repos) == 150 and fake.hits[("search", None)] == 4  # saved
