"""What the GitHub and GitLab crawls share: a listing in the driver, fetches in parallel.

    driver     Host.list_repositories ─ <state>/listing.jsonl.zst     (once, resumable)
    pipeline   ReadListing ─ KeyByPartition ─ GroupPartitions ─ FetchRepos ─┬─ RepoFile (kept)
                                                                             ├─ Rejected, tallies (stage "read")
                                                                             └─ RepoSnapshot ─ SnapshotId

The listing is keyed into `rate.concurrency` partitions and each partition's repositories
are fetched one after another, each request paced by the job's rate limiter (rate_limits.py).

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
    rate-limited     a rate-limit wait longer than http.worker_max_wait_seconds
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

import hashlib
import logging
import math
import os
import posixpath
import threading
from typing import Iterable, Iterator

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.components.adaptive_throttler import ThrottlingSignaler
from apache_beam.metrics import Metrics

from schemas.config import PipelineConfig
from schemas.records import RepoSnapshot, flat_row
from schemas.sources_config import ApiSource
from transforms.base import ApplyStage, RecordFn
from transforms.sources.archives import RepoInfo, read_archive
from transforms.sources.common import (
    MALFORMED,
    SourceOutputs,
    check_commit,
    check_repo,
    license_keys,
    malformed,
    with_snapshot_id,
)
from transforms.sources.crawl_state import CrawlState, crawl_key
from transforms.sources.hosts import Host, ListingFailure, RemoteRepo, RepoUnavailable, listing_item, listing_line
from transforms.sources.http_client import NotJson, RequestFailed
from transforms.sources.local import SNAPSHOT, STAGE
from transforms.sources.rate_limits import partition_of

log = logging.getLogger(__name__)


def fetch_repo(host: Host, repo: RemoteRepo, state: CrawlState, max_file_bytes: int) -> Iterator:
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
        for record in read_archive(info, data, host.section.limits, max_file_bytes):
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
    """(partition, listing lines) → each repository's RepoFiles (kept), Rejected and snapshot (tagged).

    The lines of one partition are fetched one after another by one client, so the job
    never has more fetches in flight than it has partitions (`rate.concurrency`).
    """

    stage = STAGE
    each_output_is_an_input = True  # each file read (or the repository's rejection) counts as one input
    extra_outputs = (SNAPSHOT,)

    def __init__(self, host_cls: type[Host], section: ApiSource, state_dir: str, max_file_bytes: int):
        self.host_cls = host_cls
        self.section = section
        self.state_dir = state_dir
        self.max_file_bytes = max_file_bytes

    def setup(self):
        # Jitter differs per worker so that workers do not retry in step. The token is read here,
        # on the worker (from Secret Manager with token_secret), never carried in the graph.
        seed = int.from_bytes(hashlib.sha256(f"{os.getpid()}:{threading.get_ident()}:{id(self)}".encode()).digest()[:8], "big")
        self.host = self.host_cls(self.section, self.host_cls.make_client(self.section, seed, worker=True))
        self.state = CrawlState(self.state_dir)
        namespace = f"crawl-{self.host_cls.source}"
        self.requests = Metrics.counter(namespace, "requests")
        self.retries = Metrics.counter(namespace, "retries")
        # The client's own rate-limit waits (Retry-After, a reset); the limiter signals its waits itself.
        self.throttling = ThrottlingSignaler(namespace)
        self.signalled = 0

    def __call__(self, partition_lines: tuple[int, Iterable[str]]):
        _, lines = partition_lines
        for line in lines:
            yield from self.fetch(line)

    def fetch(self, line: str):
        item = listing_item(line)
        if isinstance(item, ListingFailure):
            yield item.rejected()
            return
        self.count(f"{item.source}.repositories")
        client = self.host.client
        requests, retries = client.requests, client.retries
        for record in fetch_repo(self.host, item, self.state, self.max_file_bytes):
            yield pvalue.TaggedOutput(SNAPSHOT, record) if isinstance(record, RepoSnapshot) else record
        self.requests.inc(client.requests - requests)
        self.retries.inc(client.retries - retries)
        throttled = math.ceil(client.throttled_seconds)
        if throttled > self.signalled:
            self.throttling.signal_throttled(throttled - self.signalled)
            self.signalled = throttled

    def teardown(self):
        client = getattr(getattr(self, "host", None), "client", None)
        if client is not None and client.requests:
            log.info(
                "%s fetch worker: %d requests, %d retries, %.0fs waited",
                self.host_cls.source, client.requests, client.retries, client.waited_seconds,
            )


class CrawlRepos(beam.PTransform):
    """A listed crawl's repositories → SourceOutputs, fetched in `rate.concurrency` partitions."""

    def __init__(self, host_cls: type[Host], section: ApiSource, state_dir: str, max_file_bytes: int, summary: dict):
        super().__init__()
        self.host_cls = host_cls
        self.section = section
        self.state_dir = state_dir
        self.max_file_bytes = max_file_bytes
        self.summary = summary

    def expand(self, pbegin):
        fetch = FetchRepoFn(self.host_cls, self.section, self.state_dir, self.max_file_bytes)
        partitions = self.section.rate.concurrency
        read = (
            pbegin
            | "ReadListing" >> beam.io.ReadFromText(CrawlState(self.state_dir).listing_path)
            | "KeyByPartition" >> beam.Map(lambda line: (partition_of(line, partitions), line))
            | "GroupPartitions" >> beam.GroupByKey()
            | "FetchRepos" >> ApplyStage(fetch)
        )
        summary = with_snapshot_id(pbegin, self.summary, read[SNAPSHOT])
        return SourceOutputs(read.kept, read.rejected, read.tally, read[SNAPSHOT], summary)


def list_crawl(host_cls: type[Host], config: PipelineConfig, dataset_dir: str) -> CrawlRepos:
    """List a crawl's repositories now (resuming from its state) and return its fetch transform."""
    section = getattr(config.sources, host_cls.source)
    where = f"sources.{host_cls.source}"
    license_keys(section.licenses, f"{where}.licenses")
    name = f"{host_cls.source}-{crawl_key(host_cls.source, section, config.read.max_file_bytes)}"
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
    host.check_token()  # a refused token stops the run now, not as a 401 in every fetch
    listing = host.list_repositories(state)
    items = listing.items()
    state.write_listing(listing_line(item) for item in items)
    log.info(
        "%s: %d repositories listed, %d listing failures (%d requests)",
        where, len(listing.repos), len(listing.failures), client.requests,
    )
    summary = {
        "state": shown,
        "repositories": len(listing.repos),
        "listing_failures": len(listing.failures),
        **dict(sorted(listing.facts.items())),
        **{k: sorted(v) for k, v in sorted(listing.notes.items())},
    }
    return CrawlRepos(host_cls, section, state_dir, config.read.max_file_bytes, summary)


