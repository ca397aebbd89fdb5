"""The API client against a real local server: rate limits, retries, budget, token secrecy."""

from __future__ import annotations

import logging
import time

import pytest
from werkzeug.wrappers import Response

from schemas.sources_config import HttpSettings
from tests.transforms.sources.network_fakes import FakeServer, json_response
from transforms.sources.crawl.http_client import ApiClient, BudgetExhausted, RequestFailed

TOKEN = "ghp_SECRETsecretSECRET0123456789"


class RecordingClock:
    """Time that moves only when the client sleeps; the sleeps are recorded."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now
        self.sleeps = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


class Script:
    """A server answering each request with the next scripted response (then 200 {"ok": n})."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []
        self.server = FakeServer(self.app)

    def app(self, environ, start_response):
        self.requests.append(dict(path=environ["PATH_INFO"], auth=environ.get("HTTP_AUTHORIZATION")))
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None and not isinstance(answer, Response):
            answer = answer()
        response = answer or json_response({"ok": len(self.requests)})
        return response(environ, start_response)


@pytest.fixture
def script():
    servers = []

    def make(*answers):
        s = Script(*answers)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.server.close()


def client_for(server, clock=None, token=TOKEN, **settings) -> ApiClient:
    settings = {"max_retries": 3, "backoff_seconds": 1.0, "max_backoff_seconds": 8.0, "timeout_seconds": 2.0, **settings}
    return ApiClient(server.server.url, HttpSettings(**settings), token=token, clock=clock or RecordingClock(), seed=7)


def test_502_is_retried_with_bounded_jittered_backoff(script):
    s = script(*[json_response({"message": "Server Error"}, 502)] * 3)
    clock = RecordingClock()
    reply = client_for(s, clock).get("x")
    assert reply.status == 200 and reply.json() == {"ok": 4}
    assert len(clock.sleeps) == 3
    for attempt, slept in enumerate(clock.sleeps):  # equal jitter: in [d/2, d] for d = 1, 2, 4
        assert 2**attempt / 2 <= slept <= 2**attempt
    # The same seed gives the same jitter.
    again = RecordingClock()
    client_for(script(*[json_response({}, 502)] * 3), again).get("x")
    assert again.sleeps == clock.sleeps


def test_retries_run_out_as_a_transient_failure(script):
    s = script(*[json_response({"message": "Server Error"}, 502)] * 10)
    client = client_for(s, max_retries=2)
    with pytest.raises(RequestFailed) as e:
        client.get("x")
    assert e.value.transient and "HTTP 502" in str(e.value) and "3 attempts" in str(e.value)
    assert len(s.requests) == 3


def test_secondary_rate_limit_403_waits_retry_after(script):
    limited = json_response({"message": "You have exceeded a secondary rate limit."}, 403, {"Retry-After": "17"})
    s = script(limited)
    clock = RecordingClock()
    assert client_for(s, clock).get("x").status == 200
    assert clock.sleeps == [17.0]


def test_repeated_secondary_limits_wait_exponentially_longer(script):
    # GitHub: without Retry-After wait at least a minute, then exponentially longer while it persists.
    limited = json_response({"message": "You have exceeded a secondary rate limit."}, 403)
    s = script(limited, limited, limited, None, limited)
    clock = RecordingClock()
    client = client_for(s, clock)
    assert client.get("x").status == 200
    assert [60.0 <= clock.sleeps[0] <= 66.0, 120.0 <= clock.sleeps[1] <= 132.0, 240.0 <= clock.sleeps[2] <= 264.0] == [True] * 3
    assert len(set(clock.sleeps)) == 3  # jittered: two clients do not ask again in the same second
    assert client.get("y").status == 200  # a success in between starts again at a minute
    assert len(clock.sleeps) == 4 and 60.0 <= clock.sleeps[3] <= 66.0


def test_primary_rate_limit_waits_until_reset(script):
    clock = RecordingClock()
    reset = str(int(clock.now) + 120)
    exhausted = json_response(
        {"message": "API rate limit exceeded"}, 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    )
    s = script(exhausted)
    assert client_for(s, clock).get("x").status == 200
    (sleep,) = clock.sleeps
    assert 121.0 < sleep <= 133.0  # until the reset, plus up to a tenth of the wait as jitter


def test_last_request_of_a_window_holds_the_next_until_reset(script):
    clock = RecordingClock()
    gitlab_style = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(clock.now) + 30)}
    s = script(json_response({"a": 1}, 200, gitlab_style))
    client = client_for(s, clock)
    assert client.get("a").json() == {"a": 1} and clock.sleeps == []
    client.get("b")
    (sleep,) = clock.sleeps  # until the reset, plus jitter of up to a tenth of the wait (clients do not all wake at once)
    assert 31.0 < sleep <= 34.0


def test_429_without_headers_waits_at_least_a_minute(script):
    s = script(json_response({"message": "Too Many Requests"}, 429))
    clock = RecordingClock()
    client_for(s, clock).get("x")
    assert clock.sleeps and clock.sleeps[0] >= 60


def test_plain_403_and_404_are_final(script):
    s = script(json_response({"message": "Repository access blocked"}, 403), json_response({"message": "Not Found"}, 404))
    client = client_for(s)
    assert client.get("a").status == 403
    assert client.get("b").status == 404
    assert len(s.requests) == 2 and client.retries == 0


def test_timeout_is_retried(script):
    def slow():
        time.sleep(0.6)
        return json_response({"late": True})

    s = script(slow)
    clock = RecordingClock()
    reply = client_for(s, clock, timeout_seconds=0.2).get("x")
    assert reply.json() == {"ok": 2} and len(clock.sleeps) == 1


def test_request_budget_counts_every_attempt(script):
    s = script(json_response({}, 502))
    client = client_for(s, request_budget=3)
    client.get("a")  # 502 then 200: two attempts
    client.get("b")
    with pytest.raises(BudgetExhausted):
        client.get("c")
    assert len(s.requests) == 3


def test_body_limit_refuses_large_answers(script):
    s = script(Response(b"x" * 5000))
    with pytest.raises(RequestFailed) as e:
        client_for(s).get("big", max_bytes=1000)
    assert not e.value.transient


def test_token_is_sent_but_never_shown(script, caplog):
    echo = json_response({"message": f"bad token {TOKEN}"}, 502)
    s = script(echo, echo, echo, echo)
    client = client_for(s)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RequestFailed) as e:
        client.get("x")
    assert s.requests[0]["auth"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(e.value) and "***" in str(e.value)
    assert TOKEN not in repr(client) and TOKEN not in caplog.text
    assert caplog.text  # the retries were logged


def test_token_from_environment(script, monkeypatch):
    s = script()
    monkeypatch.setenv("CRAWL_TEST_TOKEN", TOKEN)
    client = ApiClient.from_env(s.server.url, HttpSettings(), "CRAWL_TEST_TOKEN")
    client.get("x")
    monkeypatch.delenv("CRAWL_TEST_TOKEN")
    anonymous = ApiClient.from_env(s.server.url, HttpSettings(), "CRAWL_TEST_TOKEN")
    anonymous.get("y")
    assert [r["auth"] for r in s.requests] == [f"Bearer {TOKEN}", None]
    assert client.authenticated and not anonymous.authenticated


def test_a_worker_does_not_sleep_through_a_reset_an_hour_away(script):
    """A fetch worker's client (defer_after) fails the request as rate-limited instead of sleeping in the bundle."""
    clock = RecordingClock()
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(clock.now) + 3600)}
    s = script(json_response({"message": "API rate limit exceeded"}, 403, spent), json_response({"a": 1}, 200, spent))
    client = ApiClient(s.server.url, HttpSettings(), token=TOKEN, clock=clock, defer_after=180)
    with pytest.raises(RequestFailed) as caught:
        client.get("a")
    assert caught.value.reason == "rate-limited" and caught.value.transient and "rate limit resets in 36" in str(caught.value)
    assert clock.sleeps == [] and len(s.requests) == 1

    assert client.get("b").json() == {"a": 1}  # the last request of the window: the next one would wait an hour
    with pytest.raises(RequestFailed, match="a rerun resumes here"):
        client.get("c")
    assert clock.sleeps == [] and len(s.requests) == 2  # not sent

    waits = []  # the launcher's client (no defer_after) sleeps through the same reset
    launcher = ApiClient(s.server.url, HttpSettings(), token=TOKEN, clock=clock)
    launcher._blocked_until = clock.now + 600
    clock.sleeps = waits
    launcher.get("d")
    assert waits and waits[0] >= 600
