"""The host protocol: how a crawl lists repositories and fetches one (GitHub and GitLab implement it).

A `Host` pages through the API's listing into a `Listing` of `RemoteRepo`s (and
`ListingFailure`s for pages that failed), then for each repository pins a commit and
downloads its archive. `RepoUnavailable` carries a rejection reason; `StopListing` ends a
listing early (budget spent, last page).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import urllib.parse
from typing import Callable

from schemas import stage_names
from schemas.config import ConfigError
from schemas.records import Rejected, RepoFile, flat_row, record_id
from schemas.sources_config import ApiSource
from transforms.sources.common import MALFORMED, STATUS_REASONS, check_repo, malformed
from transforms.sources.crawl.http_client import ApiClient, BudgetExhausted, Reply, RequestFailed
from transforms.sources.crawl.rate_limits import make_limiter
from transforms.sources.crawl.state import CrawlState
from transforms.sources.secret_manager import section_token

log = logging.getLogger(__name__)


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
    created_at: str | None = None  # GitLab: the listing keeps projects created by the snapshot date

    def unavailable(self, reason: str, detail: str) -> Rejected:
        rid = RepoFile.make_id(self.source, self.repo, "", None)
        return Rejected(rid, stage_names.READ, reason, detail, self.source, self.repo, "")


@dataclasses.dataclass(frozen=True)
class ListingFailure:
    """A listing request that failed: its query's repositories (from there on) are missing."""

    source: str
    request: str
    reason: str
    detail: str

    def rejected(self) -> Rejected:
        rid = record_id(self.source, "listing", self.request)
        return Rejected(rid, stage_names.READ, self.reason, f"{self.request}: {self.detail}", self.source, None, None)


def listing_line(item: RemoteRepo | ListingFailure) -> dict:
    return {"kind": type(item).__name__, **flat_row(item)}


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
    keep: Callable[[dict], bool] | None = None  # a filter on a listed repository's fields (GitLab: created by the snapshot date)
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
            if self.keep is not None and not self.keep(data):
                self.facts["left_out_by_date"] += 1
                continue
            self.repos.setdefault(data["repo"], RemoteRepo(**data))

    def items(self) -> list[RemoteRepo | ListingFailure]:
        return [self.repos[name] for name in sorted(self.repos)] + self.failures


class Host:
    """One API's calls. Subclasses list repositories, pin commits and download archives."""

    source = ""
    headers: dict = {}
    requests_per_hour: int | None = None  # the API's documented budget per token, when rate.requests_per_hour is unset

    def __init__(self, section: ApiSource, client: ApiClient):
        self.section = section
        self.client = client

    @classmethod
    def make_client(cls, section: ApiSource, seed: int, worker: bool = False) -> ApiClient:
        """A client with the section's first token: from Secret Manager (token_secret), else from $token_env."""
        token = section_token(section)
        return cls.client_for(section, token, seed, cls.limiter_for(section, token, seed) if worker else None, worker)

    @classmethod
    def limiter_for(cls, section: ApiSource, token: str | None, seed: int):
        """The limiter one token's fetch clients share (rate_limits.py)."""
        return make_limiter(section.rate, token, f"crawl-{cls.source}", seed, cls.requests_per_hour)

    @classmethod
    def client_for(cls, section: ApiSource, token: str | None, seed: int, limiter=None, worker: bool = True) -> ApiClient:
        """A client with `token`. A fetch worker's client asks `limiter` (shared by the token's clients)
        before each request and does not sleep through a rate-limit wait longer than `rate.max_wait_seconds`."""
        defer_after = section.rate.max_wait_seconds if worker else None
        return ApiClient(
            section.base_url, section.http, token=token, headers=cls.headers, seed=seed, limiter=limiter, defer_after=defer_after
        )

    # -- the token (driver) ----------------------------------------------------------------

    token_check = ""  # the cheap authenticated endpoint that says whether the API takes the token

    def check_token(self, key: str = "token_env") -> dict | None:
        """Ask `token_check` once before any worker starts: a refused token stops the run here, naming the key.

        Returns the endpoint's answer (None without a token, or when it is not JSON). Any
        other failure is left to the listing, which records it.
        """
        if not self.client.authenticated:
            return None
        try:
            reply = self.client.get(self.token_check)
        except RequestFailed as e:
            log.warning("sources.%s: could not check the token (%s); the listing goes on", self.source, e)
            return None
        if reply.status == 401:
            raise ConfigError(
                f"sources.{self.source}.{key}: the API refused the token "
                f"(GET /{self.token_check}: HTTP 401 {self.client.redact(reply.message())}); "
                "replace it with a valid one before the crawl starts"
            )
        try:
            return reply.json() if reply.status == 200 else None
        except ValueError:
            return None

    # -- listing (driver) ----------------------------------------------------------------

    def list_repositories(self, state: CrawlState) -> Listing:
        raise NotImplementedError

    def read_page(self, reply: Reply) -> dict:
        """{"repos": [RemoteRepo fields], "next": url or None, "total": int or None} of one page."""
        raise NotImplementedError

    def page(self, state: CrawlState, listing: Listing, path: str, params: dict | None = None, save_if=None) -> dict | None:
        """One listing page, from the state when it was answered before; None when it failed.

        `save_if(answer)` False keeps an answer out of the state (the next run asks again).
        """
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
        if save_if is None or save_if(answer):
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
            raise RepoUnavailable(f"http-{reply.status}", detail, permanent=False)
        raise RepoUnavailable(STATUS_REASONS.get(reply.status, f"http-{reply.status}"), detail)

    def download(self, path: str, params: dict | None = None) -> bytes:
        """An archive's bytes, at most limits.max_archive_bytes of them."""
        limit = self.section.limits.max_archive_bytes
        try:
            reply = self.client.get(path, params, max_bytes=limit)
        except RequestFailed as e:
            if e.reason != "too-large-reply":
                raise
            raise RepoUnavailable("archive-too-large", f"more than {limit} bytes compressed") from None
        return self.check(reply, "archive").body


def canonical_request(url: str, params: dict | None) -> str:
    """A URL with its query parameters sorted: the key of a listing page in the state."""
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(sorted(params.items()))
