"""Benchmark: one crawl worker's path, over repositories made of the installed site-packages.

The .py files of site-packages (ordered by a hash of their path) are grouped into repositories
of `--files-per-repo` files and served by the tests' local GitHub fake. Three passes, one
process, no pipeline start-up:

    read     archives.read_archive over the tarballs already in memory (decompress, check, decode)
    fetch    list, pin, download and read every repository through the real client (127.0.0.1),
             saving each one's records in a fresh crawl state
    replay   the same repositories again: every one comes from the crawl state

Prints repositories/s, files/s and MB/s (uncompressed file bytes) of each pass.

Then the rate-limited crawl: the fake enforces a per-token budget (`--budget` requests per
`--window` seconds, a scaled-down hour) and a concurrency cap, and the crawl's pipeline
(CrawlRepos on the local runner, multi_processing) fetches small repositories with its
limiter set to that budget, for 1, 2 and 4 workers with one token and 2 workers with two
tokens. Prints the request rate reached per token against its budget, requests per repository,
the most requests in flight per token, and the repositories per hour one GitHub token (5,000
requests an hour) gives at that efficiency.

    .venv/bin/python bench/bench_crawl.py --max-mb 30
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import sysconfig
import tempfile
import time

# The local GitHub fake lives with the tests; the checkout's root must come first on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schemas.records import RepoFile
from schemas.sources_config import GitHubSource, HttpSettings
from tests.transforms.sources.network_fakes import FakeGitHub, FakeRepo, make_tarball
from transforms.sources.crawl.archives import RepoInfo, read_archive
from transforms.sources.crawl.github import GitHubHost
from transforms.sources.crawl.source import fetch_repo
from transforms.sources.crawl.state import CrawlState

MAX_FILE_BYTES = 1_000_000
BENCH_TOKEN_ENV = "BENCH_CRAWL_GITHUB_TOKEN"  # _0, _1, ...: the tokens of the rate-limited crawl


def make_repos(max_bytes: int, files_per_repo: int) -> list[FakeRepo]:
    root = sysconfig.get_paths()["purelib"]
    paths = []
    for dirpath, _, names in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in names if n.endswith(".py")]
    paths.sort(key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    repos, files, total = [], {}, 0
    for path in paths:
        data = open(path, "rb").read()
        if len(data) > MAX_FILE_BYTES:
            continue
        files[os.path.relpath(path, root)] = data
        total += len(data)
        if len(files) == files_per_repo or total >= max_bytes:
            repos.append(FakeRepo(f"bench/repo{len(repos):04d}", files, stars=len(repos)))
            files = {}
        if total >= max_bytes:
            break
    return repos


def report(name: str, seconds: float, repos: int, files: int, size: int) -> None:
    print(
        f"| {name} | {repos} | {files} | {size / 1e6:.1f} | {seconds:.2f} | {repos / seconds:.1f} | "
        f"{files / seconds:.0f} | {size / 1e6 / seconds:.2f} |"
    )


def crawl(host: GitHubHost, state: CrawlState) -> tuple[int, int]:
    files = size = 0
    for repo in host.list_repositories(state).repos.values():
        for record in fetch_repo(host, repo, state, MAX_FILE_BYTES):
            if isinstance(record, RepoFile):
                files += 1
                size += record.size
    return files, size


GITHUB_REQUESTS_PER_HOUR = 5000  # one token's REST budget


def budget_pass(repos: list[FakeRepo], workers: int, tokens: int, args) -> dict:
    """One rate-limited crawl through the pipeline; the figures come from the fake's own clock."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    from pipeline.options import make_pipeline_options
    from schemas.sources_config import RateSettings
    from transforms.sources.crawl.hosts import listing_line
    from transforms.sources.crawl.source import CrawlRepos

    names = [f"{BENCH_TOKEN_ENV}_{i}" for i in range(tokens)]
    values = [f"ghp_bench{i}BENCHbench00000000000000000000" for i in range(tokens)]
    os.environ.update(zip(names, values))
    fake = FakeGitHub(repos, token=values[0], more_tokens=tuple(values[1:]))
    fake.budget, fake.concurrency_cap, fake.delay = (args.budget, args.window), args.concurrency, args.latency
    per_hour = int(args.budget * 3600 / args.window)
    rate = RateSettings(requests_per_hour=per_hour, concurrency=args.concurrency, max_wait_seconds=60)
    try:
        section = GitHubSource(
            base_url=fake.url,
            token_env=names[0],
            extra_tokens=tuple(names[1:]),
            languages=("Python",),
            licenses=("MIT",),
            http=HttpSettings(timeout_seconds=30),
            rate=rate,
        )
        with tempfile.TemporaryDirectory() as tmp:
            state = CrawlState(tmp)
            host = GitHubHost(section, GitHubHost.make_client(section, seed=0))
            state.write_listing(listing_line(item) for item in host.list_repositories(state).items())
            options = make_pipeline_options(["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"])
            with beam.Pipeline(options=options) as p:
                _ = p | CrawlRepos(GitHubHost, section, state.path, (MAX_FILE_BYTES, None), {})
        throttled = p.result.metrics().query(MetricsFilter().with_name("cumulativeThrottlingSeconds"))["counters"]
        times = sorted(fake.budgeted_times)
        in_flight = max(n for token, n in fake.max_in_flight_by_token.items() if token is not None)
        return {
            "requests": len(times),
            "span": times[-1] - times[0],
            "max_in_flight": in_flight,
            "over_budget": fake.over_budget,
            "secondary": fake.secondary_limited,
            "throttled": sum(c.committed for c in throttled),
            "fetched": sum(fake.archives_served.values()),
        }
    finally:
        fake.close()


def report_budget(repos: int, workers: int, tokens: int, budget: int, window: float, r: dict) -> None:
    allowed = budget / window  # per token
    rate = (r["requests"] - 1) / r["span"] / tokens  # reached, per token
    per_repo = r["requests"] / repos
    per_hour = GITHUB_REQUESTS_PER_HOUR * (rate / allowed) / per_repo
    print(
        f"| {workers} | {tokens} | {r['fetched']}/{repos} | {allowed:.1f} | {rate:.2f} ({rate / allowed:.0%}) | "
        f"{rate * tokens:.2f} | {per_repo:.2f} | {r['max_in_flight']} | {r['over_budget']} | {r['secondary']} | "
        f"{r['throttled']} | {per_hour:,.0f} |"
    )


def rate_limited(args) -> None:
    repos = [FakeRepo(f"rate/r{i:03d}", {"m.py": f"VALUE = {i}\n".encode()}) for i in range(args.rate_repos)]
    print(
        f"\nRate-limited crawl: {len(repos)} repositories, each token allowed {args.budget} requests per "
        f"{args.window:g} s and {args.concurrency} at once; each request takes {args.latency:g} s\n"
    )
    print(
        "| workers | tokens | fetched | allowed req/s per token | reached req/s per token | reached req/s, all | "
        "requests/repo | most in flight per token | over budget (403) | over concurrency (403) | throttled s | "
        "repos/hour per 5,000-request token |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for workers, tokens in ((1, 1), (2, 1), (4, 1), (2, 2)):
        r = budget_pass(repos, workers, tokens, args)
        report_budget(len(repos), workers, tokens, args.budget, args.window, r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-mb", type=float, default=30)
    parser.add_argument("--files-per-repo", type=int, default=200)
    parser.add_argument("--rate-repos", type=int, default=60, help="repositories of the rate-limited crawl")
    parser.add_argument("--budget", type=int, default=20, help="requests per window per token")
    parser.add_argument("--window", type=float, default=2.0, help="seconds: the fake's scaled-down hour")
    parser.add_argument("--concurrency", type=int, default=4, help="requests at once per token")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds the fake takes to answer each request")
    args = parser.parse_args()
    repos = make_repos(int(args.max_mb * 1e6), args.files_per_repo)
    print("| pass | repositories | files | MB | seconds | repos/s | files/s | MB/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")

    section = GitHubSource(licenses=("MIT",), languages=("Python",))
    tarballs = [make_tarball(f"bench-{r.name[6:]}-{r.sha[:7]}", r.files) for r in repos]
    started, files, size = time.perf_counter(), 0, 0
    for repo, data in zip(repos, tarballs):
        info = RepoInfo("github", repo.name, repo.sha, "MIT", repo.stars, "github")
        for record in read_archive(info, data, section.limits, MAX_FILE_BYTES):
            if isinstance(record, RepoFile):
                files, size = files + 1, size + record.size
    report("read", time.perf_counter() - started, len(repos), files, size)

    fake = FakeGitHub(repos)
    for repo in repos:  # build the archives now, so the fake's work is not timed
        owner, name = repo.name.split("/")
        top = f"{owner}-{name}-{repo.sha[:7]}"
        fake.tarballs[(repo.name, top)] = repo.tarball(top)
    try:
        section = GitHubSource(
            base_url=fake.url, token_env=None, languages=("Python",), licenses=("MIT",), http=HttpSettings(timeout_seconds=30)
        )
        host = GitHubHost(section, GitHubHost.make_client(section, seed=0))
        with tempfile.TemporaryDirectory() as tmp:
            state = CrawlState(tmp)
            for name in ("fetch", "replay"):
                started = time.perf_counter()
                files, size = crawl(host, state)
                report(name, time.perf_counter() - started, len(repos), files, size)
        print(f"\nrequests: {host.client.requests} ({len(repos)} repositories; the replay made none)")
    finally:
        fake.close()
    rate_limited(args)


if __name__ == "__main__":
    main()
