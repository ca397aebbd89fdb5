"""Each token's budget held across the job, through Beam's `RateLimiter` interface.

A token allows so many requests an hour (GitHub: 5,000) whatever the number of workers,
so the crawl bounds two things per token for the whole job (`sources.<host>.rate`):

- concurrency: the listing is keyed by token (`token_of`), and each token's repositories
  are one element, fetched by one DoFn call on `concurrency` threads; so no more than
  `concurrency` requests per token are in flight across the job, however many workers
  autoscaling adds. More tokens (`extra_tokens`) are more elements, fetched in parallel.
- the rate: each request first asks the token's limiter. `TokenRateLimiter` is a token
  bucket at `requests_per_hour`, shared by that token's threads, and it holds the whole
  budget since one task uses the token; with `service` set, Beam's `EnvoyRateLimiter`
  asks an Envoy rate-limit service holding one budget per token (by a digest of it),
  for when several jobs or crawls share a token.

Waits carry jitter and are reported through Beam's throttling counter
(`cumulativeThrottlingSeconds`, which Dataflow's autoscaler reads, so a throttled job is
not given more workers): the client times every wait for the limiter and every
rate-limit wait the API asked for, and the fetch step signals them from its own thread
(Beam keeps no metrics for the fetch threads). No limiter waits longer than
`max_wait_seconds` inside a bundle: past that `allow` says no, the repository is rejected
as `rate-limited` (not saved), and a rerun resumes from the crawl state.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time

from apache_beam.io.components.rate_limiter import EnvoyRateLimiter, RateLimiter

from schemas.sources_config import RateSettings

ENVOY_RETRIES = 2  # asks of the service after an OVER_LIMIT before `allow` says no (each waits until its reset)


def token_of(line: str, tokens: int) -> int:
    """Which token fetches a listed repository: stable across runs and workers."""
    return int.from_bytes(hashlib.sha256(line.encode()).digest()[:8], "big") % tokens


def token_id(token: str | None) -> str:
    """How the rate-limit service names a token: a digest, never the token."""
    return hashlib.sha256((token or "anonymous").encode()).hexdigest()[:16]


class TokenRateLimiter(RateLimiter):
    """A token bucket at the token's hourly budget, shared by the threads fetching with that token.

    Holds at most one request's credit (no bursts). A wait is slept with up to a tenth
    more as jitter; one longer than `max_wait_seconds` is not slept and `allow` says no.
    """

    def __init__(self, requests_per_hour: int, max_wait_seconds: float, namespace: str, seed: int = 0):
        super().__init__(namespace=namespace)
        self.interval = 3600.0 / requests_per_hour  # seconds between two requests
        self.max_wait_seconds = max_wait_seconds
        self._next = 0.0  # monotonic time of the next allowed request
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.throttled_seconds = 0.0

    def allow(self, hits_added: int = 1, **kwargs) -> bool:
        self.requests_counter.inc()
        with self._lock:
            now = time.monotonic()
            wait = max(0.0, self._next - now)
            if wait > self.max_wait_seconds:
                self.requests_throttled.inc()
                return False
            wait += self._rng.uniform(0, wait / 10)
            self._next = max(now, self._next) + self.interval * hits_added
        if wait > 0:
            self.requests_throttled.inc()
            self.throttled_seconds += wait
            self.throttling_signaler.signal_throttled(math.ceil(wait))
            time.sleep(wait)
        self.requests_allowed.inc()
        return True

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def make_limiter(
    rate: RateSettings, token: str | None, namespace: str, seed: int, documented_per_hour: int | None = None
) -> RateLimiter | None:
    """The limiter shared by one token's clients: the Envoy service's, the token's own bucket, or none.

    `rate.requests_per_hour` unset means the API's documented budget (`documented_per_hour`).
    """
    if rate.service:
        return EnvoyRateLimiter(
            service_address=rate.service,
            domain=rate.domain,
            descriptors=[{"token": token_id(token)}],
            block_until_allowed=False,
            retries=ENVOY_RETRIES,
            namespace=namespace,
        )
    per_hour = rate.requests_per_hour or documented_per_hour
    if per_hour is None:
        return None
    return TokenRateLimiter(per_hour, rate.max_wait_seconds, namespace, seed)
