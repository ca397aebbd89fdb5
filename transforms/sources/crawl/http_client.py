"""An HTTP client for the crawled APIs: rate limits, retries, a request budget, a secret token.

GitHub (REST v3) and GitLab (REST v4) answer a too-fast client with 403 or 429 and
say how long to wait: `Retry-After`, or a remaining count of 0 with the epoch second
it resets (`X-RateLimit-Remaining/Reset` on GitHub, `RateLimit-Remaining/Reset` on
GitLab). Both also fail now and then with 5xx or time out. `ApiClient.get` waits as
told, retries transient failures with bounded exponential backoff (jitter from a
seeded generator, so runs and tests repeat), and counts every attempt against an
optional budget. Sleeping goes through a `Clock`, which tests replace.

The token comes from an environment variable, travels only in a request header
(requests drops it on redirects to another host, e.g. GitHub's codeload), and is
redacted from every message this module builds; `repr` never shows it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import random
import time
from typing import Any, Mapping

import requests
from apache_beam.io.components.rate_limiter import RateLimiter
from requests.utils import parse_header_links

from schemas.sources_config import HttpSettings

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
# GitHub: without Retry-After, wait at least a minute after a secondary limit, and longer each
# time it answers with one again ("wait for an exponentially increasing amount of time").
SECONDARY_LIMIT_WAIT = 60.0
RESET_JITTER_SECONDS = 30.0  # most jitter added to a wait for a rate-limit window to reset
MAX_JSON_BYTES = 64 * 2**20  # an API answer larger than this is refused rather than held in memory
CHUNK_BYTES = 1 << 16


class Clock:
    """Wall-clock time and sleep; tests pass one that only records the sleeps."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class RequestFailed(RuntimeError):
    """A request that did not succeed, with the rejection `reason` it gives its repository.

    `transient` failures are worth trying again in a later run (they are not saved in the crawl state).
    """

    def __init__(self, message: str, transient: bool, reason: str = "request-error"):
        super().__init__(message)
        self.transient = transient
        self.reason = reason


class MalformedReply(ValueError):
    """A body that is not the JSON an API answers: a proxy's HTML page, or a string no UTF-8 writer can store."""


class NotJson(MalformedReply):
    """A body that does not parse as JSON at all (rejection reason `bad-json`)."""


class BudgetExhausted(RequestFailed):
    """The client has made as many requests as its budget allows."""

    def __init__(self, message: str):
        super().__init__(message, transient=True, reason="request-budget")


# What a request raises, beyond an HTTP status, as (rejection reason, retried within the request).
# A redirect loop or a malformed URL comes back the same way every time: it is final at once.
REQUEST_ERRORS = (
    (requests.exceptions.TooManyRedirects, "redirect-loop", False),
    (requests.exceptions.ContentDecodingError, "bad-encoding", True),  # a gzip/deflate body that does not decode
    (requests.Timeout, "timeout", True),
    (requests.ConnectionError, "connection-error", True),
    (requests.exceptions.ChunkedEncodingError, "connection-error", True),  # the connection broke mid-body
    (requests.RequestException, "request-error", False),  # an invalid URL or header, and the rest
)


def request_error(e: requests.RequestException) -> tuple[str, bool]:
    """The rejection reason of a request exception, and whether to retry it now."""
    return next((reason, retry) for kind, reason, retry in REQUEST_ERRORS if isinstance(e, kind))


@dataclasses.dataclass(frozen=True)
class Reply:
    """A completed response: status, headers and the whole body (bounded by the caller's limit)."""

    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; MalformedReply when it is not JSON or holds a lone surrogate.

        json.loads accepts an escaped lone surrogate ("\\ud800") and returns a str that
        cannot be encoded to UTF-8 (the Parquet writer fails on it), so such a body is
        refused here rather than deep in the pipeline.
        """
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise NotJson(f"GET {_path(self.url)}: body is not JSON ({type(e).__name__}: {str(e)[:100]})") from None
        bad = _lone_surrogate(data)
        if bad is not None:
            raise MalformedReply(f"GET {_path(self.url)}: a string holds a lone surrogate ({bad[:60]!r})")
        return data

    @property
    def links(self) -> dict[str, str]:
        """The Link header as {rel: url} (GitHub and GitLab keyset pagination)."""
        header = self.headers.get("Link", "")
        return {link["rel"]: link["url"] for link in parse_header_links(header) if "rel" in link} if header else {}

    def message(self) -> str:
        """The API's error message (`message` or `error` of a JSON body), else the start of the body."""
        try:
            data = self.json()
        except ValueError:
            return self.body[:200].decode("utf-8", "replace")
        if isinstance(data, dict):
            return str(data.get("message") or data.get("error") or "")[:200]
        return ""


class ApiClient:
    """GET requests to one API, paced by its rate limits and retried within bounds."""

    def __init__(
        self,
        base_url: str,
        settings: HttpSettings,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        seed: int = 0,
        limiter: RateLimiter | None = None,
        defer_after: float | None = None,
    ):
        """`limiter` (Beam's RateLimiter interface) is asked before every request; a rate-limit wait
        longer than `defer_after` seconds fails the request as `rate-limited` instead of sleeping."""
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.clock = clock or Clock()
        self._rng = random.Random(seed)
        self._token = token or None
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "code-corpus"
        self._session.headers.update(headers or {})
        if self._token:
            # `Authorization` (GitHub and GitLab both take `Bearer`), because requests drops it on a
            # redirect to another host (GitHub's codeload, a GitLab archive CDN); a custom header it keeps.
            self._session.headers["Authorization"] = "Bearer " + self._token
        self.limiter = limiter
        self.defer_after = defer_after
        self._blocked_until = 0.0
        self._secondary_limits = 0  # secondary-limit answers in a row: each doubles the next wait
        self.refused: str | None = None  # set by the first 401: the token is no good, no more requests
        self.requests = 0  # attempts made, the budget counts these
        self.retries = 0
        self.waited_seconds = 0.0
        self.throttled_seconds = 0.0  # the part of waited_seconds spent on rate limits

    @classmethod
    def from_env(cls, base_url: str, settings: HttpSettings, token_env: str | None, **kwargs) -> "ApiClient":
        """A client whose token is read from the environment variable `token_env` (if set there)."""
        token = os.environ.get(token_env) if token_env else None
        return cls(base_url, settings, token=token, **kwargs)

    @property
    def authenticated(self) -> bool:
        return self._token is not None

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r}, authenticated={self.authenticated})"

    def redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, params: Mapping[str, Any] | None = None, max_bytes: int = MAX_JSON_BYTES) -> Reply:
        """GET `path` (relative to the base URL, or a full URL from a Link header).

        Returns the final reply, whatever its status, once it is not one to retry.
        Raises RequestFailed with the rejection reason otherwise: `http-<status>` or
        `timeout`/`connection-error`/`bad-encoding` when retries run out, `redirect-loop`,
        `too-large-reply` (over `max_bytes`), `request-budget`, `rate-limited` (a wait longer
        than `defer_after`), and `unauthorized` for every request after the API refused the token.
        """
        url = self.url(path)
        if self.refused is not None:  # a revoked token stays revoked: no more requests with it
            raise RequestFailed(f"GET {_path(url)}: not sent, {self.refused}", transient=True, reason="unauthorized")
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            self._wait_until_unblocked()
            self._spend()
            try:
                reply = self._fetch(url, params, max_bytes)
            except requests.RequestException as e:
                reason, retry = request_error(e)
                problem = f"{type(e).__name__}: {str(e)[:200]}"
                if not retry:
                    raise RequestFailed(self.redact(f"GET {_path(url)}: {problem}"), transient=False, reason=reason) from None
                wait = self._backoff(attempt)
            else:
                self._note_reply(reply)
                wait = self._retry_wait(reply, attempt)
                if wait is None:
                    return reply
                limited = reply.status in (403, 429)
                reason = "rate-limited" if limited else f"http-{reply.status}"
                problem = f"HTTP {reply.status} {reply.message()}".strip()
                if limited:
                    self._check_wait(wait, url)
            if attempt + 1 == attempts:
                break
            self.retries += 1
            log.warning("GET %s: %s; retry %d/%d in %.1fs", _path(url), self.redact(problem), attempt + 1, attempts - 1, wait)
            self._sleep(wait, throttled=reason == "rate-limited")
        message = self.redact(f"GET {_path(url)}: {problem} (after {attempts} attempts)")
        raise RequestFailed(message, transient=True, reason=reason)

    def _fetch(self, url: str, params: Mapping[str, Any] | None, max_bytes: int) -> Reply:
        timeout = self.settings.timeout_seconds
        with self._session.get(url, params=params, timeout=timeout, stream=True) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise RequestFailed(f"GET {_path(url)}: body of {declared} bytes exceeds {max_bytes}", False, "too-large-reply")
            # BytesIO's getvalue hands over its buffer (no copy), so a 500 MB archive is held once, not
            # twice as a bytearray copied to bytes would be; BytesIO(body) in archives.py shares it too.
            body = io.BytesIO()
            for chunk in response.iter_content(CHUNK_BYTES):
                body.write(chunk)
                if body.tell() > max_bytes:
                    raise RequestFailed(f"GET {_path(url)}: body exceeds {max_bytes} bytes", False, "too-large-reply")
            return Reply(response.status_code, response.url, response.headers, body.getvalue())

    def _spend(self) -> None:
        budget = self.settings.request_budget
        if budget is not None and self.requests >= budget:
            raise BudgetExhausted(f"request budget of {budget} spent")
        if self.limiter is not None:
            started = time.monotonic()
            allowed = self.limiter.allow()
            self.throttled_seconds += time.monotonic() - started  # reported by the fetch step (see rate_limits.py)
            if not allowed:
                raise RequestFailed("the rate limiter did not allow the request in time", transient=True, reason="rate-limited")
        self.requests += 1

    def _retry_wait(self, reply: Reply, attempt: int) -> float | None:
        """Seconds to wait before retrying `reply`, or None when it is final."""
        if reply.status in (403, 429):
            retry_after = reply.headers.get("Retry-After", "")
            if retry_after.isdigit():
                return float(retry_after)
            reset = self._exhausted_reset(reply)
            if reset is not None:
                return max(0.0, reset - self.clock.time()) + 1.0 + self._reset_jitter(reset)
            if reply.status == 429 or "rate limit" in reply.message().lower():
                return self._secondary_limit_wait()
            return None
        self._secondary_limits = 0
        if reply.status in RETRYABLE_STATUS:
            return self._backoff(attempt)
        return None

    @staticmethod
    def _exhausted_reset(reply: Reply) -> float | None:
        """The reset time when the reply says no requests remain (either header spelling)."""
        for prefix in ("X-RateLimit-", "RateLimit-"):
            remaining = reply.headers.get(prefix + "Remaining")
            reset = reply.headers.get(prefix + "Reset", "")
            if remaining == "0" and reset.isdigit():
                return float(reset)
        return None

    def _note_reply(self, reply: Reply) -> None:
        """After the last request of a window, hold the next one until the window resets (plus jitter,
        so that clients do not all ask again in the same second); after a 401, refuse every later request."""
        reset = self._exhausted_reset(reply)
        if reset is not None and reply.status < 400:
            self._blocked_until = max(self._blocked_until, reset + 1.0 + self._reset_jitter(reset))
        if reply.status == 401:
            self.refused = self.redact(f"the API refused the token (HTTP 401 {reply.message()})".strip())

    def _reset_jitter(self, reset: float) -> float:
        """Up to a tenth of the wait (at most RESET_JITTER_SECONDS), drawn from the seeded generator."""
        return self._rng.uniform(0, min(RESET_JITTER_SECONDS, max(0.0, reset - self.clock.time()) / 10))

    def _check_wait(self, wait: float, url: str) -> None:
        """A rate-limit wait longer than `defer_after` is not slept: the request fails as `rate-limited`."""
        if self.defer_after is not None and wait > self.defer_after:
            raise RequestFailed(
                f"GET {_path(url)}: the rate limit resets in {wait:.0f}s, longer than a worker waits "
                f"({self.defer_after:.0f}s); a rerun resumes here",
                transient=True,
                reason="rate-limited",
            )

    def _wait_until_unblocked(self) -> None:
        wait = self._blocked_until - self.clock.time()
        if wait > 0:
            self._check_wait(wait, self.base_url)
            log.info("%s: rate limit reached; waiting %.0fs for it to reset", self.base_url, wait)
            self._sleep(wait, throttled=True)

    def pause(self, attempt: int) -> None:
        """Back off before asking again for an answer that came back 200 but unusable (GitHub's incomplete search)."""
        self.retries += 1
        self._sleep(self._backoff(attempt))

    def _secondary_limit_wait(self) -> float:
        """60 s, then 120, 240, ... while the API keeps answering with a secondary limit, each with up to a
        tenth more as jitter (capped by _sleep)."""
        wait = SECONDARY_LIMIT_WAIT * 2 ** min(self._secondary_limits, 16)
        self._secondary_limits += 1
        return wait + self._rng.uniform(0, wait / 10)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half drawn from the seeded generator."""
        delay = min(self.settings.max_backoff_seconds, self.settings.backoff_seconds * 2**attempt)
        return delay / 2 + self._rng.uniform(0, delay / 2)

    def _sleep(self, seconds: float, throttled: bool = False) -> None:
        seconds = min(seconds, self.settings.max_wait_seconds)
        self.waited_seconds += seconds
        if throttled:
            self.throttled_seconds += seconds
        self.clock.sleep(seconds)


def _lone_surrogate(data: Any) -> str | None:
    """The first string (key or value, at any depth) that UTF-8 cannot encode, else None.

    Iterative, so a deeply nested body json.loads accepted cannot exhaust the stack here.
    """
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
    return None


def _path(url: str) -> str:
    """A URL without its query string, for messages (queries can be long)."""
    return url.split("?", 1)[0]
