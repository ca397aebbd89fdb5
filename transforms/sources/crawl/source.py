"""What the GitHub and GitLab crawls share: a listing in the driver, fetches in parallel.

    driver     Host.list_repositories ─ <state>/listing.jsonl.zst     (once, resumable)
    pipeline   ReadListing ─ KeyByToken ─ GroupByToken ─ FetchRepos ─┬─ RepoFile (kept)
                                                                      ├─ Rejected, tallies (stage "read")
                                                                      └─ RepoSnapshot ─ SnapshotId

The listing is keyed by token and each token's repositories are fetched by one task on
`rate.concurrency` threads, each request paced by the token's limiter (rate_limits.py).

FetchRepos pins each repository to a commit, downloads its archive and reads it with
`archives.read_archive`, saving the records in the crawl state as it goes; a repository
already there is replayed instead of fetched. Faults become Rejected records of stage
"read" with the repository and a reason:

    vanished, empty-repository, forbidden, unavailable-legal, http-4xx (any other
    final 4xx), license-not-allowed, not-main-language, no-commit, archive-too-large,
    redirect-loop, too-large-reply, request-error
                     permanent: saved in the state, not asked again
    http-5xx, timeout, connection-error, bad-encoding   after every retry
    unauthorized     the API refused the token; the worker's client sends nothing more
    rate-limited     a rate-limit wait longer than rate.max_wait_seconds
    request-budget   the worker's budget is spent
    bad-json, malformed-reply   an answer that is not JSON / not the JSON the API documents
    fetch-error      anything else one repository's fetch raised (logged with its traceback)
                     none of these is saved: the next run tries again
    listing-failed   a listing request that failed or whose answer was malformed; its
                     query's later pages are not listed

Only what stops every repository stops the job, before it starts: a token the API
refuses (checked in the launcher), a state directory that cannot be written.

`transforms.sources.registry.network_sources` builds every configured network source for the graph.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import math
import os
import posixpath
import queue
import threading
from typing import Iterable, Iterator

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.components.adaptive_throttler import ThrottlingSignaler
from apache_beam.metrics import Metrics

from schemas import stage_names
from schemas.config import PipelineConfig
from schemas.records import RepoSnapshot, flat_row
from schemas.sources_config import ApiSource
from transforms.base import ApplyStage, RecordFn
from transforms.sources.common import (
    MALFORMED,
    SourceOutputs,
    check_commit,
    check_repo,
    license_keys,
    malformed,
    with_snapshot_id,
)
from transforms.sources.crawl.archives import RepoInfo, read_archive
from transforms.sources.crawl.hosts import Host, ListingFailure, RemoteRepo, RepoUnavailable, listing_item, listing_line
from transforms.sources.crawl.http_client import NotJson, RequestFailed
from transforms.sources.crawl.rate_limits import token_of
from transforms.sources.crawl.state import CrawlState, crawl_key
from transforms.sources.local.source import SNAPSHOT
from transforms.sources.secret_manager import section_tokens, token_key

log = logging.getLogger(__name__)


def fetch_repo(
    host: Host, repo: RemoteRepo, state: CrawlState, max_file_bytes: int, max_notebook_bytes: int | None = None
) -> Iterator:
    """A repository's records from the state, or fetched (and saved) when it is not there."""
    saved = state.load_repo(repo.source, repo.repo)
    if saved is not None:
        yield from saved
        return
    try:
        repo, commit, data = fetch_archive(host, repo)
    except RepoUnavailable as e:
        rejected = repo.unavailable(e.reason, host.client.redact(e.detail))
        if e.permanent:
            writer = state.repo_writer(repo.source, repo.repo, {"repo": repo.repo, "commit": None})
            writer.add(rejected)
            writer.commit()
        yield rejected
        return
    info = RepoInfo(repo.source, repo.repo, commit, repo.license, repo.stars, origin=repo.source)
    header = {"repo": repo.repo, "commit": commit, "license": repo.license, "stars": repo.stars}
    writer = state.repo_writer(repo.source, repo.repo, header)
    try:
        for record in read_archive(info, data, host.section.limits, max_file_bytes, max_notebook_bytes):
            writer.add(record)
            yield record
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def fetch_archive(host: Host, repo: RemoteRepo) -> tuple[RemoteRepo, str, bytes]:
    """The repository as prepared, its pinned commit and its archive; RepoUnavailable for any fault.

    Whatever one repository's requests raise is that repository's rejection, so one bad
    answer never fails the bundle: a failed request by its reason (saved unless a later
    run may do better), an answer of the wrong shape as `bad-json` or `malformed-reply`
    (not saved), anything else as `fetch-error` (not saved, and logged with its traceback).
    """
    try:
        repo = host.prepare(repo)
        check_repo(flat_row(repo))
        commit = check_commit(host.pin_commit(repo))
        return repo, commit, host.archive(repo, commit)
    except RepoUnavailable:
        raise
    except RequestFailed as e:
        raise RepoUnavailable(e.reason, str(e), permanent=not e.transient) from None
    except NotJson as e:
        raise RepoUnavailable("bad-json", malformed(e), permanent=False) from None
    except MALFORMED as e:  # a proxy's page or a bad answer may be gone next run
        raise RepoUnavailable("malformed-reply", malformed(e), permanent=False) from None
    except Exception as e:
        log.exception("%s %s: unexpected failure while fetching", repo.source, repo.repo)
        raise RepoUnavailable("fetch-error", f"{type(e).__name__}: {str(e)[:200]}", permanent=False) from None


class FetchRepoFn(RecordFn):
    """(token index, listing lines) → each repository's RepoFiles (kept), Rejected and snapshot (tagged).

    One token's repositories are one element, fetched here on `rate.concurrency` threads,
    each with its own client, all asking the token's one limiter: so no more requests are
    in flight per token, nor made per hour, than configured, however many workers run.
    Records are yielded, and metrics counted, in this (Beam's) thread.
    """

    stage = stage_names.READ
    each_output_is_an_input = True  # each file read (or the repository's rejection) counts as one input
    extra_outputs = (SNAPSHOT,)

    def __init__(
        self, host_cls: type[Host], section: ApiSource, state_dir: str, max_file_bytes: int, max_notebook_bytes: int | None = None
    ):
        self.host_cls = host_cls
        self.section = section
        self.state_dir = state_dir
        self.sizes = (max_file_bytes, max_notebook_bytes)

    def setup(self):
        # The tokens are read here, on the worker (from Secret Manager with token_secret), never carried in the graph.
        self.tokens = section_tokens(self.section)
        self.state = CrawlState(self.state_dir)
        namespace = f"crawl-{self.host_cls.source}"
        self.requests = Metrics.counter(namespace, "requests")
        self.retries = Metrics.counter(namespace, "retries")
        self.throttling = ThrottlingSignaler(namespace)  # the limiter's waits and the API's (Retry-After, a reset)
        self.hosts = []

    def make_hosts(self, token_index: int) -> queue.Queue:
        """`rate.concurrency` hosts with their own clients (jitter seeded per worker and thread), one limiter."""
        seed = int.from_bytes(hashlib.sha256(f"{os.getpid()}:{id(self)}:{token_index}".encode()).digest()[:8], "big")
        token = self.tokens[token_index]
        limiter = self.host_cls.limiter_for(self.section, token, seed)
        hosts = queue.Queue()
        for i in range(self.section.rate.concurrency):
            hosts.put(self.host_cls(self.section, self.host_cls.client_for(self.section, token, seed + i, limiter)))
        self.hosts += list(hosts.queue)
        return hosts

    def __call__(self, token_lines: tuple[int, Iterable[str]]):
        token_index, lines = token_lines
        hosts = self.make_hosts(token_index)
        before = self.client_totals()
        for record in run_concurrently(lambda line: self.fetch(hosts, line), lines, hosts.qsize()):
            if isinstance(record, str):  # a repository starts: count it, and what its fetch did so far
                self.count(f"{record}.repositories")
                before = self.report(before)
                continue
            yield pvalue.TaggedOutput(SNAPSHOT, record) if isinstance(record, RepoSnapshot) else record
        self.report(before)

    def fetch(self, hosts: queue.Queue, line: str) -> Iterator:
        """One listing line's records (after its source's name), on a fetch thread with a host of its own."""
        item = listing_item(line)
        if isinstance(item, ListingFailure):
            yield item.rejected()
            return
        yield item.source
        host = hosts.get()
        try:
            yield from fetch_repo(host, item, self.state, *self.sizes)
        finally:
            hosts.put(host)

    def client_totals(self) -> tuple[int, int, int]:
        clients = [host.client for host in self.hosts]
        return (
            sum(c.requests for c in clients),
            sum(c.retries for c in clients),
            math.ceil(sum(c.throttled_seconds for c in clients)),
        )

    def report(self, before: tuple[int, int, int]) -> tuple[int, int, int]:
        """Count what the fetch threads did since `before` (Beam keeps metrics for its own threads only)."""
        now = self.client_totals()
        self.requests.inc(now[0] - before[0])
        self.retries.inc(now[1] - before[1])
        if now[2] > before[2]:
            self.throttling.signal_throttled(now[2] - before[2])
        return now

    def teardown(self):
        clients = [host.client for host in getattr(self, "hosts", [])]
        if any(c.requests for c in clients):
            log.info(
                "%s fetch worker: %d requests, %d retries, %.0fs waited",
                self.host_cls.source,
                sum(c.requests for c in clients),
                sum(c.retries for c in clients),
                sum(c.waited_seconds for c in clients),
            )


class _Stopped(Exception):
    """The consumer of run_concurrently went away; its threads stop at their next output."""


def run_concurrently(work, items: Iterable, threads: int, backlog: int = 64) -> Iterator:
    """What work(item) yields, for each item, run on `threads` threads, at most `threads` items at once.

    The items are read as the work goes, never all held; the outputs come back here, to the
    caller's thread, through a queue of at most `backlog`, so a large repository's records
    stream out as they are read instead of being held whole. An exception of the work is
    raised here.
    """
    outputs = queue.Queue(maxsize=backlog)
    stop = threading.Event()

    def put(entry) -> None:
        while not stop.is_set():
            try:
                return outputs.put(entry, timeout=0.1)
            except queue.Full:
                continue
        raise _Stopped

    def run(item) -> None:
        try:
            for output in work(item):
                put((False, output))
        except _Stopped:
            return
        except BaseException as e:
            put((True, e))
            return
        put((True, None))

    items = iter(items)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        try:
            running, more = 0, True
            while True:
                while more and running < threads:
                    item = next(items, _Stopped)
                    more = item is not _Stopped
                    if more:
                        pool.submit(run, item)
                        running += 1
                if not running:
                    return
                finished, value = outputs.get()
                if not finished:
                    yield value
                    continue
                running -= 1
                if value is not None:
                    raise value
        finally:
            stop.set()


class CrawlRepos(beam.PTransform):
    """A listed crawl's repositories → SourceOutputs, each token's share fetched by one task."""

    def __init__(self, host_cls: type[Host], section: ApiSource, state_dir: str, sizes: tuple[int, int], summary: dict):
        super().__init__()
        self.host_cls = host_cls
        self.section = section
        self.state_dir = state_dir
        self.sizes = sizes  # read.max_file_bytes, read.max_notebook_bytes
        self.summary = summary

    def expand(self, pbegin):
        fetch = FetchRepoFn(self.host_cls, self.section, self.state_dir, *self.sizes)
        tokens = 1 + len(self.section.extra_tokens)
        read = (
            pbegin
            | "ReadListing" >> beam.io.ReadFromText(CrawlState(self.state_dir).listing_path)
            | "KeyByToken" >> beam.Map(lambda line: (token_of(line, tokens), line))
            | "GroupByToken" >> beam.GroupByKey()
            | "FetchRepos" >> ApplyStage(fetch)
        )
        summary = with_snapshot_id(pbegin, self.summary, read[SNAPSHOT])
        return SourceOutputs(read.kept, read.rejected, read.tally, read[SNAPSHOT], summary)


def list_crawl(host_cls: type[Host], config: PipelineConfig, dataset_dir: str) -> CrawlRepos:
    """List a crawl's repositories now (resuming from its state) and return its fetch transform."""
    section = getattr(config.sources, host_cls.source)
    where = f"sources.{host_cls.source}"
    license_keys(section.licenses, f"{where}.licenses")
    sizes = (config.read.max_file_bytes, config.read.max_notebook_bytes)
    name = f"{host_cls.source}-{crawl_key(host_cls.source, section, *sizes)}"
    if section.state_dir:
        state_dir, shown = posixpath.join(config.resolve(section.state_dir), name), posixpath.join(section.state_dir, name)
    else:
        state_dir, shown = posixpath.join(dataset_dir, "crawl", name), posixpath.join("crawl", name)
    client = host_cls.make_client(section, config.seed)
    if section.token_env and not client.authenticated:
        log.warning(
            "%s.token_env: $%s is not set; the %s API is called without a token", where, section.token_env, host_cls.source
        )
    state = CrawlState(state_dir)
    host = host_cls(section, client)
    for i, token in enumerate(section_tokens(section)):  # a refused token stops the run now, not as 401s in every fetch
        checker = host if i == 0 else host_cls(section, host_cls.client_for(section, token, config.seed, worker=False))
        checker.check_token(token_key(section, i))
    listing = host.list_repositories(state)
    items = listing.items()
    state.write_listing(listing_line(item) for item in items)
    log.info(
        "%s: %d repositories listed, %d listing failures (%d requests)",
        where,
        len(listing.repos),
        len(listing.failures),
        client.requests,
    )
    summary = {
        "state": shown,
        "repositories": len(listing.repos),
        "listing_failures": len(listing.failures),
        **dict(sorted(listing.facts.items())),
        **{k: sorted(v) for k, v in sorted(listing.notes.items())},
    }
    return CrawlRepos(host_cls, section, state_dir, sizes, summary)
