"""Each token's budget across the job: one fetch task per token bounds concurrency, limiters pace requests and report throttling."""

from __future__ import annotations

import threading
import time

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from schemas.errors import ConfigError
from schemas.records import RepoFile
from schemas.sources_config import GitHubSource, RateSettings
from tests.conftest import local_pipeline
from tests.transforms.sources.network_fakes import FakeRepo
from tests.transforms.sources.ratelimit_fake import FakeRateLimitService
from tests.transforms.sources.test_github_source import FAST, TOKEN, TOKEN_ENV, github  # noqa: F401 (fixture)
from transforms.sources.crawl.github import GitHubHost
from transforms.sources.crawl.hosts import listing_line
from transforms.sources.crawl.rate_limits import TokenRateLimiter, make_limiter, token_id, token_of
from transforms.sources.crawl.source import CrawlRepos, fetch_repo
from transforms.sources.crawl.state import CrawlState

SECOND_TOKEN = "ghp_secondTOKEN000000000000000000000000"


def test_a_token_limiter_paces_its_threads_with_jitter_and_counts_the_wait():
    limiter = TokenRateLimiter(requests_per_hour=18_000, max_wait_seconds=5, namespace="t")  # 0.2 s apart
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [limiter.allow() for _ in range(2)]) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    assert 0.95 <= elapsed < 1.1 + 0.5  # six requests from three threads: five waits of about 0.2 s, jitter at most a tenth
    assert limiter.throttled_seconds >= 0.95


def test_a_wait_longer_than_the_bound_is_refused_not_slept():
    limiter = TokenRateLimiter(requests_per_hour=1, max_wait_seconds=1, namespace="t")  # an hour apart
    assert limiter.allow()
    start = time.monotonic()
    assert limiter.allow() is False and time.monotonic() - start < 0.5


def test_repositories_are_spread_over_the_tokens_stably():
    names = [f"o/r{i}" for i in range(1000)]
    shares = [token_of(n, 3) for n in names]
    assert shares == [token_of(n, 3) for n in names] and set(shares) == {0, 1, 2}
    assert min(shares.count(t) for t in range(3)) > 280


def test_the_service_limiter_names_the_token_by_a_digest():
    limiter = make_limiter(RateSettings(service="127.0.0.1:8081", domain="crawl"), TOKEN, "crawl-github", 0)
    assert limiter.descriptors == [{"token": token_id(TOKEN)}] and limiter.domain == "crawl"
    assert TOKEN not in repr(limiter.__getstate__()) and make_limiter(RateSettings(), TOKEN, "n", 0) is None


def test_bad_rate_settings_name_the_key():
    with pytest.raises(ConfigError, match="concurrency"):
        RateSettings(concurrency=0)
    with pytest.raises(ConfigError, match="service must be host:port"):
        RateSettings(service="http://envoy:8081")


@pytest.mark.slow
def test_two_workers_never_exceed_the_concurrency_and_report_throttled_time(github, tmp_path, monkeypatch):  # noqa: F811
    """The fake GitHub allows each token 3 requests a second and 2 at once, each taking 0.4 s; two tokens, two Beam
    worker processes, rate.concurrency 2."""
    monkeypatch.setenv("CRAWL_TEST_GITHUB_TOKEN_2", SECOND_TOKEN)
    repos = [FakeRepo(f"o/r{i:02d}", {f"m{i}.py": f"VALUE = {i}\n".encode()}) for i in range(12)]
    fake = github(repos, more_tokens=(SECOND_TOKEN,))
    fake.delay = 0.4  # longer than the limiter's spacing (1/3 s): each token's two threads overlap
    fake.concurrency_cap = 2
    fake.budget = (3, 1.0)
    rate = RateSettings(requests_per_hour=3 * 3600, concurrency=2, max_wait_seconds=30)
    section = GitHubSource(
        base_url=fake.url,
        token_env=TOKEN_ENV,
        extra_tokens=("CRAWL_TEST_GITHUB_TOKEN_2",),
        http=FAST,
        languages=("Python",),
        licenses=("MIT",),
        rate=rate,
    )
    state = CrawlState(str(tmp_path / "state"))
    host = GitHubHost(section, GitHubHost.make_client(section, seed=0))
    state.write_listing(listing_line(item) for item in host.list_repositories(state).items())

    with local_pipeline("--direct_running_mode=multi_processing", "--direct_num_workers=2") as p:
        out = p | CrawlRepos(GitHubHost, section, state.path, (1000, None), {})
        assert_that(out.kept | beam.Map(lambda f: f.repo), equal_to([r.name for r in repos]), label="AllFetched")
        assert_that(out.rejected | beam.Flatten(), equal_to([]), label="NoneRejected")
    result = p.result

    per_token = {k: n for k, n in fake.max_in_flight_by_token.items() if k is not None}
    assert set(per_token) == {f"Bearer {TOKEN}", f"Bearer {SECOND_TOKEN}"}  # both tokens fetched
    assert max(per_token.values()) == 2 and fake.secondary_limited == 0  # the cap reached, never passed, per token
    throttled = result.metrics().query(MetricsFilter().with_name("cumulativeThrottlingSeconds"))["counters"]
    seconds = sum(c.committed for c in throttled if c.key.metric.namespace == "crawl-github")
    assert seconds >= 2  # two threads ask faster than 3 a second: the limiters waited, and said so
    requests = result.metrics().query(MetricsFilter().with_namespace("crawl-github").with_name("requests"))["counters"]
    # Commits and tarball per repository, and one more for each answer over the budget (the fake's windows
    # start on whole seconds, the limiter's spacing does not): the client waited for its reset and asked again.
    assert sum(c.committed for c in requests) == 2 * len(repos) + fake.over_budget


@pytest.fixture
def envoy():
    services = []

    def make(limit: int, window: float) -> FakeRateLimitService:
        service = FakeRateLimitService(limit, window)
        services.append(service)
        return service

    yield make
    for service in services:
        service.close()


def test_workers_share_one_budget_through_the_envoy_service(envoy):
    """Two limiters (two workers) asking one service: together never more than its limit in a window."""
    service = envoy(limit=5, window=1.0)
    rate = RateSettings(service=service.address, domain="code-corpus")
    limiters = [make_limiter(rate, TOKEN, "crawl-github", seed) for seed in (1, 2)]
    allowed = []

    def work(limiter):
        allowed.extend(limiter.allow() for _ in range(4))

    threads = [threading.Thread(target=work, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed == [True] * 8
    assert set(service.granted) and max(service.granted.values()) <= 5 and sum(service.granted.values()) == 8
    assert {key[:2] for key in service.granted} == {("code-corpus", (("token", token_id(TOKEN)),))}  # one budget, by digest
    assert len(service.granted) >= 2  # eight asks against a limit of five: the second window served the rest


def test_a_worker_client_fetches_through_the_envoy_service(github, envoy, tmp_path):  # noqa: F811
    service = envoy(limit=100, window=60.0)
    fake = github([FakeRepo("o/a", {"a.py": b"a = 1\n"})])
    section = GitHubSource(
        base_url=fake.url,
        token_env=TOKEN_ENV,
        http=FAST,
        languages=("Python",),
        licenses=("MIT",),
        rate=RateSettings(service=service.address),
    )
    state = CrawlState(str(tmp_path))
    listed = GitHubHost(section, GitHubHost.make_client(section, seed=0)).list_repositories(state).repos
    host = GitHubHost(section, GitHubHost.make_client(section, seed=0, worker=True))
    out = list(fetch_repo(host, listed["o/a"], state, 1000))
    assert [r.path for r in out if isinstance(r, RepoFile)] == ["a.py"]
    assert sum(service.granted.values()) == host.client.requests == 2  # commits and tarball, each asked first


def test_an_unset_budget_is_the_apis_documented_one():
    from schemas.sources_config import GitLabSource
    from transforms.sources.crawl.gitlab import GitLabHost

    paced = GitHubHost.limiter_for(GitHubSource(rate=RateSettings(concurrency=8)), TOKEN, 0)  # as YAML `rate: {concurrency: 8}`
    assert paced.interval == 3600 / 5000
    assert GitHubHost.limiter_for(GitHubSource(rate=RateSettings(requests_per_hour=15_000)), TOKEN, 0).interval == 0.24
    assert GitLabHost.limiter_for(GitLabSource(), TOKEN, 0) is None  # GitLab: its headers pace it
