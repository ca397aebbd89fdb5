"""One token's budget shared by every fetch of a job, through Beam's `RateLimiter` interface.

A token allows so many requests an hour (GitHub: 5,000) whatever the number of workers,
so the crawl bounds two things for the whole job (`sources.<host>.rate`):

- concurrency: the listing is keyed into `concurrency` partitions and each partition is
  fetched by one DoFn call, one repository after another, so no more than `concurrency`
  requests are in flight across the job, however many workers autoscaling adds;
- the rate: each request first asks a limiter. `PartitionRateLimiter` gives each partition
  an equal share of `requests_per_hour` (a token bucket, in the worker, nothing shared),
  so the partitions together never exceed the budget; with `service` set,
  Beam's `EnvoyRateLimiter` asks an Envoy rate-limit service that holds one budget per
  token for every worker (the documented way on Dataflow, where idle shares are not lost).

Waits carry jitter and are reported through Beam's throttling counter
(`cumulativeThrottlingSeconds`), which Dataflow's autoscaler reads, so a throttled job is
not given more workers. No limiter waits longer than `max_wait_seconds` inside a bundle:
past that `allow` says no, the repository is rejected as `rate-limited` (not saved), and a
rerun resumes from the crawl state.
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


def partition_of(repo: str, partitions: int) -> int:
    """The fetch partition of a repository: stable across runs and workers."""
    return int.from_bytes(hashlib.sha256(repo.encode()).digest()[:8], "big") % partitions


def token_id(token: str | None) -> str:
    """How the rate-limit service names a token: a digest, never the token."""
    return hashlib.sha256((token or "anonymous").encode()).hexdigest()[:16]


class PartitionRateLimiter(RateLimiter):
    """A token bucket holding one partition's share of the token's hourly budget.

    Holds at most one request's credit (no bursts). A wait is slept with up to a tenth
    more as jitter, and signalled as throttled time; one longer than `max_wait_seconds`
    is not slept and `allow` returns False.
    """

    def __init__(self, requests_per_hour: int, partitions: int, max_wait_seconds: float, namespace: str, seed: int = 0):
        super().__init__(namespace=namespace)
        self.interval = 3600.0 * partitions / requests_per_hour  # seconds between two requests of one partition
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


def make_limiter(rate: RateSettings, token: str | None, namespace: str, seed: int) -> RateLimiter | None:
    """The limiter of one fetch partition's client: the Envoy service's, the partition's share, or none."""
    if rate.service:
        return EnvoyRateLimiter(
            service_address=rate.service,
            domain=rate.domain,
            descriptors=[{"token": token_id(token)}],
            block_until_allowed=False,
            retries=ENVOY_RETRIES,
            namespace=namespace,
        )
    if rate.requests_per_hour is None:
        return None
    return PartitionRateLimiter(rate.requests_per_hour, rate.concurrency, rate.max_wait_seconds, namespace, seed)
