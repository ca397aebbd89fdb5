"""What the GitHub and GitLab crawls share: a listing in the driver, fetches in parallel.

    driver     Host.list_repositories ─ <state>/listing.jsonl.zst     (once, resumable)
    pipeline   ReadListing ─ SpreadRepos (Reshuffle) ─ FetchRepos ─┬─ RepoFile (kept)
                                                                    ├─ Rejected, tallies (stage "read")
                                                                    └─ RepoSnapshot ─ SnapshotId

FetchRepos pins each repository to a commit, downloads its archive and reads it with
`archives.read_archive`, saving the records in the crawl state as it goes; a repository
already there is replayed instead of fetched. Faults become Rejected records of stage
"read" with the repository and a reason:

    vanished, empty-repository, forbidden, unavailable-legal, api-error,
    license-not-allowed, not-main-language, no-commit, archive-too-large
                     permanent: saved in the state, not asked again
    server-error     5xx or timeouts after every retry; unauthorized; request-budget
                     (the worker's budget is spent); malformed-reply (an answer that is not
                     the JSON the API documents): not saved, the next run tries again
    listing-failed   a listing request that failed or whose answer was malformed; its
                     query's later pages are not listed

`network_sources` builds every configured network source (BigQuery included) for the graph.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import os
import posixpath
import threading
import typing
import urllib.parse
from typing import Iterator

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from schemas.config import ApiSource, ConfigError, PipelineConfig
from schemas.records import Rejected, RepoFile, RepoSnapshot, record_id
from transforms.base import REJECTED, TALLY, Tally
from transforms.sources.archives import RepoInfo, read_archive
from transforms.sources.crawl_state import CrawlState, crawl_key
from transforms.sources.http_client import ApiClient, BudgetExhausted, MalformedReply, Reply, RequestFailed
from transforms.sources.local import SNAPSHOT, STAGE

log = logging.getLogger(__name__)

# License keys as GitHub, GitLab and BigQuery's `licenses` table spell them (licensee's) → SPDX ids.
LICENSE_KEYS = {
    "mit": "MIT",
    "apache-2.0": "Apache-2.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "isc": "ISC",
    "unlicense": "Unlicense",
    "mpl-2.0": "MPL-2.0",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-3.0": "LGPL-3.0-only",
    "gpl-2.0": "GPL-2.0-only",
    "gpl-3.0": "GPL-3.0-only",
    "agpl-3.0": "AGPL-3.0-only",
}
SPDX_KEYS = {spdx: key for key, spdx in LICENSE_KEYS.items()}

# What reading an answer of an unexpected shape raises (MalformedReply is a ValueError too):
# a list where a dict was expected, a missing field, a number that is not one.
MALFORMED = (MalformedReply, AttributeError, IndexError, KeyError, TypeError, ValueError)
OPTIONAL_STR, OPTIONAL_INT = (str, type(None)), (int, type(None))
REPO_FIELDS = {
    "repo": str,
    "api_id": str,
    "default_branch": OPTIONAL_STR,
    "stars": OPTIONAL_INT,
    "license": OPTIONAL_STR,
    "pushed_at": OPTIONAL_STR,
}
COMMIT_CHARS = frozenset("0123456789abcdef")

# Final statuses that say something about the repository itself.
STATUS_REASONS = {403: "forbidden", 404: "vanished", 409: "empty-repository", 410: "vanished", 451: "unavailable-legal"}


def malformed(e: Exception) -> str:
    """The detail of a malformed answer (bounded: an error can quote the answer)."""
    text = str(e) if isinstance(e, MalformedReply) else f"{type(e).__name__}: {e}"
    return f"malformed reply: {text}"[:300]


def check_repo(data: dict) -> dict:
    """RemoteRepo fields of the types the records need; TypeError for an answer that gave others."""
    for name, kind in REPO_FIELDS.items():
        if not isinstance(data[name], kind) or (kind is str and not data[name]):
            raise TypeError(f"{name} is {type(data[name]).__name__} {repr(data[name])[:60]}")
    return data


def check_commit(commit) -> str:
    """A commit id as the APIs give it (40 or 64 lowercase hex digits); it goes into URLs and records."""
    if not isinstance(commit, str) or len(commit) not in (40, 64) or not COMMIT_CHARS.issuperset(commit):
        raise MalformedReply(f"commit id {repr(commit)[:80]} is not a hex object name")
    return commit


def spdx_of_key(key: str | None) -> str | None:
    return LICENSE_KEYS.get((key or "").lower())


def license_keys(licenses: tuple[str, ...], where: str) -> list[str]:
    """The API license keys of SPDX ids from the config; an unknown id fails at once."""
    unknown = [s for s in licenses if s not in SPDX_KEYS]
    if unknown:
        raise ConfigError(f"{where}: no API license key for {unknown}; use SPDX ids among {sorted(SPDX_KEYS)}")
    return [SPDX_KEYS[s] for s in licenses]


@dataclasses.dataclass(frozen=True)
class RemoteRepo:
    """A listed repository: how the API names it and what the listing said about it."""

    source: str
    repo: str  # owner/name as recorded (GitHub full_name, GitLab path_with_namespace)
    api_id: str  # how the API addresses it: owner/name on GitHub, the project id on GitLab
    default_branch: str | None
    stars: int | None
    license: str | None  # SPDX id the API reported, None when it reported none
    pushed_at: str | None = None

    def unavailable(self, reason: str, detail: str) -> Rejected:
        rid = RepoFile.make_id(self.source, self.repo, "", None)
        return Rejected(rid, STAGE, reason, detail, self.source, self.repo, "")


@dataclasses.dataclass(frozen=True)
class ListingFailure:
    """A listing request that failed: its query's repositories (from there on) are missing."""

    source: str
    request: str
    reason: str
    detail: str

    def rejected(self) -> Rejected:
        rid = record_id(self.source, "listing", self.request)
        return Rejected(rid, STAGE, self.reason, f"{self.request}: {self.detail}", self.source, None, None)


def listing_line(item: RemoteRepo | ListingFailure) -> dict:
    return {"kind": type(item).__name__, **dataclasses.asdict(item)}


def listing_item(line: str) -> RemoteRepo | ListingFailure:
    data = json.loads(line)
    return {"RemoteRepo": RemoteRepo, "ListingFailure": ListingFailure}[data.pop("kind")](**data)


class RepoUnavailable(Exception):
    """A repository that cannot be read; `permanent` ones are saved and not asked again."""

    def __init__(self, reason: str, detail: str, permanent: bool = True):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.permanent = permanent


class StopListing(Exception):
    """The listing cannot go on (its request budget is spent)."""


@dataclasses.dataclass
class Listing:
    """A listing in progress: repositories by name, failures, and facts for the manifest."""

    max_repositories: int | None
    repos: dict = dataclasses.field(default_factory=dict)
    failures: list = dataclasses.field(default_factory=list)
    facts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    notes: dict = dataclasses.field(default_factory=lambda: collections.defaultdict(list))

    @property
    def full(self) -> bool:
        return self.max_repositories is not None and len(self.repos) >= self.max_repositories

    def add(self, repos: list[dict]) -> None:
        for data in repos:
            if self.full:
                return
            self.repos.setdefault(data["repo"], RemoteRepo(**data))

    def items(self) -> list[RemoteRepo | ListingFailure]:
        return [self.repos[name] for name in sorted(self.repos)] + self.failures


class Host:
    """One API's calls. Subclasses list repositories, pin commits and download archives."""

    source = ""
    auth_header = "Authorization"
    auth_prefix = "Bearer "
    headers: dict = {}

    def __init__(self, section: ApiSource, client: ApiClient):
        self.section = section
        self.client = client

    @classmethod
    def make_client(cls, section: ApiSource, seed: int) -> ApiClient:
        return ApiClient.from_env(
            section.base_url,
            section.http,
            section.token_env,
            auth_header=cls.auth_header,
            auth_prefix=cls.auth_prefix,
            headers=cls.headers,
            seed=seed,
        )

    # -- listing (driver) ----------------------------------------------------------------

    def list_repositories(self, state: CrawlState) -> Listing:
        raise NotImplementedError

    def read_page(self, reply: Reply) -> dict:
        """{"repos": [RemoteRepo fields], "next": url or None, "total": int or None} of one page."""
        raise NotImplementedError

    def page(self, state: CrawlState, listing: Listing, path: str, params: dict | None = None) -> dict | None:
        """One listing page, from the state when it was answered before; None when it failed."""
        request = canonical_request(self.client.url(path), params)
        saved = state.page(request)
        if saved is not None:
            listing.facts["pages"] += 1
            return saved
        try:
            reply = self.client.get(request)
        except BudgetExhausted as e:
            listing.failures.append(ListingFailure(self.source, request, "request-budget", str(e)))
            raise StopListing from None
        except RequestFailed as e:
            listing.failures.append(ListingFailure(self.source, request, "listing-failed", str(e)))
            return None
        if reply.status == 401:
            raise ConfigError(
                f"sources.{self.source}.token_env: the API refused the token (HTTP 401 {self.client.redact(reply.message())})"
            )
        if reply.status != 200:
            detail = self.client.redact(f"HTTP {reply.status} {reply.message()}")
            listing.failures.append(ListingFailure(self.source, request, "listing-failed", detail))
            return None
        try:
            answer = self.read_page(reply)
            answer["repos"] = [check_repo(data) for data in answer["repos"]]
        except MALFORMED as e:  # not saved: the next run asks again
            listing.failures.append(ListingFailure(self.source, request, "listing-failed", self.client.redact(malformed(e))))
            return None
        state.save_page(request, answer)
        listing.facts["pages"] += 1
        return answer

    def follow(self, state: CrawlState, listing: Listing, first: dict | None) -> None:
        """Add the repositories of a page and of every next page (until the listing is full)."""
        page = first
        while page is not None:
            listing.add(page["repos"])
            if listing.full or not page["next"]:
                return
            page = self.page(state, listing, page["next"])

    # -- fetching (workers) --------------------------------------------------------------

    def prepare(self, repo: RemoteRepo) -> RemoteRepo:
        """The repository with the metadata the fetch needs (GitLab asks its project endpoint)."""
        return repo

    def pin_commit(self, repo: RemoteRepo) -> str:
        raise NotImplementedError

    def archive(self, repo: RemoteRepo, commit: str) -> bytes:
        raise NotImplementedError

    def check(self, reply: Reply, what: str) -> Reply:
        """The reply when it succeeded; otherwise RepoUnavailable with a reason for its status."""
        if 200 <= reply.status < 300:
            return reply
        detail = self.client.redact(f"{what}: HTTP {reply.status} {reply.message()}".strip())
        if reply.status == 401:
            raise RepoUnavailable("unauthorized", detail, permanent=False)
        if reply.status >= 500:
            raise RepoUnavailable("server-error", detail, permanent=False)
        raise RepoUnavailable(STATUS_REASONS.get(reply.status, "api-error"), detail)

    def download(self, path: str, params: dict | None = None) -> bytes:
        """An archive's bytes, at most limits.max_archive_bytes of them."""
        limit = self.section.limits.max_archive_bytes
        try:
            reply = self.client.get(path, params, max_bytes=limit)
        except RequestFailed as e:
            if e.transient:
                raise
            raise RepoUnavailable("archive-too-large", f"more than {limit} bytes compressed") from None
        return self.check(reply, "archive").body


def canonical_request(url: str, params: dict | None) -> str:
    """A URL with its query parameters sorted: the key of a listing page in the state."""
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(sorted(params.items()))


def fetch_repo(host: Host, repo: RemoteRepo, state: CrawlState, max_file_bytes: int) -> Iterator:
    """A repository's records from the state, or fetched (and saved) when it is not there."""
    saved = state.load_repo(repo.source, repo.repo)
    if saved is not None:
        yield from saved
        return
    try:
        repo = host.prepare(repo)
        check_repo(dataclasses.asdict(repo))
        commit = check_commit(host.pin_commit(repo))
        data = host.archive(repo, commit)
    except RepoUnavailable as e:
        rejected = repo.unavailable(e.reason, e.detail)
        if e.permanent:
            writer = state.repo_writer(repo.source, repo.repo, {"repo": repo.repo, "commit": None})
            writer.add(rejected)
            writer.commit()
        yield rejected
        return
    except RequestFailed as e:  # transient: the next run tries again
        yield repo.unavailable("request-budget" if isinstance(e, BudgetExhausted) else "server-error", str(e))
        return
    except MALFORMED as e:  # not saved either: a proxy's page or a bad answer may be gone next run
        yield repo.unavailable("malformed-reply", host.client.redact(malformed(e)))
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


class FetchRepoFn(beam.DoFn):
    """Listing line → the repository's RepoFiles (main), Rejected, tallies and its snapshot."""

    def __init__(self, host_cls: type[Host], section: ApiSource, state_dir: str, max_file_bytes: int):
        self.host_cls = host_cls
        self.section = section
        self.state_dir = state_dir
        self.max_file_bytes = max_file_bytes

    def setup(self):
        # Jitter differs per worker so that workers do not retry in step.
        seed = int.from_bytes(hashlib.sha256(f"{os.getpid()}:{threading.get_ident()}:{id(self)}".encode()).digest()[:8], "big")
        self.host = self.host_cls(self.section, self.host_cls.make_client(self.section, seed))
        self.state = CrawlState(self.state_dir)
        self.tally = Tally(STAGE)
        self.stats = collections.Counter()
        source = self.host_cls.source
        self.requests = Metrics.counter(f"crawl-{source}", "requests")
        self.retries = Metrics.counter(f"crawl-{source}", "retries")

    def process(self, line: str):
        item = listing_item(line)
        if isinstance(item, ListingFailure):
            self.tally.add_in()
            yield self.tally.route(item.rejected())
            return
        self.stats[f"{item.source}.repositories"] += 1
        requests, retries = self.host.client.requests, self.host.client.retries
        for record in fetch_repo(self.host, item, self.state, self.max_file_bytes):
            if isinstance(record, RepoSnapshot):
                yield pvalue.TaggedOutput(SNAPSHOT, record)
                continue
            self.tally.add_in()
            yield self.tally.route(record)
        self.requests.inc(self.host.client.requests - requests)
        self.retries.inc(self.host.client.retries - retries)

    def finish_bundle(self):
        self.tally.add_stats(self.stats)
        yield from self.tally.drain()

    def teardown(self):
        client = getattr(getattr(self, "host", None), "client", None)
        if client is not None and client.requests:
            log.info(
                "%s fetch worker: %d requests, %d retries, %.0fs waited",
                self.host_cls.source, client.requests, client.retries, client.waited_seconds,
            )


class SourceOutputs(typing.NamedTuple):
    """What a network source adds to the graph (flow.add_stage reads kept/rejected/tally)."""

    kept: beam.PCollection
    rejected: beam.PCollection
    tally: beam.PCollection
    snapshot: beam.PCollection
    summary: beam.PCollection  # one dict: the source's manifest entry


class SnapshotIdFn(beam.CombineFn):
    """An order-free digest of (repository, revision) pairs: the sum of their SHA-256s mod 2**256."""

    def create_accumulator(self):
        return 0

    def add_input(self, total, snapshot: RepoSnapshot):
        digest = hashlib.sha256(f"{snapshot.source}\0{snapshot.repo}\0{snapshot.revision}".encode()).hexdigest()
        return (total + int(digest, 16)) % 2**256

    def merge_accumulators(self, totals):
        return sum(totals) % 2**256

    def extract_output(self, total):
        return f"{total:064x}"


def with_snapshot_id(pbegin, summary: dict, snapshots: beam.PCollection) -> beam.PCollection:
    """The source's manifest entry: `summary` plus the snapshot id of what it read."""
    snapshot_id = snapshots | "SnapshotId" >> beam.CombineGlobally(SnapshotIdFn())
    return (
        pbegin
        | "Summary" >> beam.Create([summary])
        | "AddSnapshotId" >> beam.Map(lambda s, sid: {**s, "snapshot_id": sid}, beam.pvalue.AsSingleton(snapshot_id))
    )


class CrawlRepos(beam.PTransform):
    """A listed crawl's repositories → SourceOutputs, fetched in parallel after a Reshuffle."""

    def __init__(self, host_cls: type[Host], section: ApiSource, state_dir: str, max_file_bytes: int, summary: dict):
        super().__init__()
        self.host_cls = host_cls
        self.section = section
        self.state_dir = state_dir
        self.max_file_bytes = max_file_bytes
        self.summary = summary

    def expand(self, pbegin):
        fetch = FetchRepoFn(self.host_cls, self.section, self.state_dir, self.max_file_bytes)
        read = (
            pbegin
            | "ReadListing" >> beam.io.ReadFromText(CrawlState(self.state_dir).listing_path)
            | "SpreadRepos" >> beam.Reshuffle()
            | "FetchRepos" >> beam.ParDo(fetch).with_outputs(REJECTED, TALLY, SNAPSHOT, main="kept")
        )
        summary = with_snapshot_id(pbegin, self.summary, read[SNAPSHOT])
        return SourceOutputs(read.kept, read[REJECTED], read[TALLY], read[SNAPSHOT], summary)


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
    listing = host_cls(section, client).list_repositories(state)
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


def network_sources(config: PipelineConfig, dataset_dir: str) -> list[tuple[str, beam.PTransform]]:
    """(name, transform) of each configured network source; the API listings run now."""
    from transforms.sources.github import GitHubHost
    from transforms.sources.gitlab import GitLabHost

    sources = []
    for host_cls in (GitHubHost, GitLabHost):
        if getattr(config.sources, host_cls.source) is not None:
            sources.append((host_cls.source, list_crawl(host_cls, config, dataset_dir)))
    if config.sources.bigquery is not None:
        from transforms.sources.bigquery import ReadBigQueryFiles

        section = config.sources.bigquery
        crawled = dict(sources).get("github")
        exclude = crawled.state_dir if crawled is not None and section.exclude_crawled else None
        sources.append(("bigquery", ReadBigQueryFiles(section, exclude, config.read.max_file_bytes)))
    return sources
