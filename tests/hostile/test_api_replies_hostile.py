"""Hostile API replies: a 200 that is not JSON, the wrong shape, or a lone surrogate in a string.

Each becomes a recorded failure (a listing failure, or the repository's `bad-json` or
`malformed-reply` rejection that the next run tries again) instead of an exception that stops the crawl or,
for a lone surrogate, a str the Parquet writer cannot encode later on.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import yaml

from schemas.records import Rejected, RepoFile, RepoSnapshot
from tests.conftest import is_utf8, run_cli
from tests.transforms.sources.network_fakes import FakeGitHub, FakeRepo
from tests.transforms.sources.test_github_source import TOKEN as GITHUB_TOKEN
from tests.transforms.sources.test_github_source import github  # noqa: F401 (fixture)
from tests.transforms.sources.test_github_source import host_for as github_host
from tests.transforms.sources.test_gitlab_source import gitlab  # noqa: F401 (fixture)
from tests.transforms.sources.test_gitlab_source import host_for as gitlab_host
from tests.transforms.sources.test_network_pipeline import GITHUB_TOKEN as PIPELINE_TOKEN
from tests.transforms.sources.test_network_pipeline import code, read_rows, servers, write_config  # noqa: F401
from transforms.sources.crawl.http_client import MalformedReply, Reply
from transforms.sources.crawl.source import fetch_repo
from transforms.sources.crawl.state import CrawlState

HTML = (200, {"Content-Type": "text/html"}, "<html><body>Sign in to the corporate proxy</body></html>")


# -- Reply.json ------------------------------------------------------------------------------


def reply(body: bytes) -> Reply:
    return Reply(200, "https://api.example/search/repositories?q=x&page=2", {}, body)


@pytest.mark.parametrize(
    "body, says",
    [
        (b"<html><body>502 from the proxy</body></html>", "not JSON"),
        (b"", "not JSON"),
        (b'{"items": [', "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "not JSON"),  # deeper than json.loads recurses
        (b'{"a/\\ud800": 1}', "lone surrogate"),  # in a key
        (b'{"items": [{"owner": {"login": ["x", "y\\udfff"]}}]}', "lone surrogate"),  # in a nested value
        (b'{"full_name": "a/\\ude00\\ud83d"}', "lone surrogate"),  # a pair in the wrong order is two lone halves
        (b'{"full_name": "a/\xed\xa0\x80"}', "lone surrogate"),  # raw UTF-8 bytes of a surrogate (json.loads lets them through)
    ],
    ids=["html", "empty", "truncated", "not-utf8", "too-deep", "key", "nested-value", "reversed-pair", "raw-bytes"],
)
def test_reply_json_refuses_what_is_not_storable_json(body, says):
    with pytest.raises(MalformedReply, match=says) as caught:
        reply(body).json()
    assert isinstance(caught.value, ValueError)
    assert "https://api.example/search/repositories:" in str(caught.value)  # the URL, without its query
    assert "page=2" not in str(caught.value) and is_utf8(str(caught.value))


def test_reply_json_accepts_surrogate_pairs_and_other_text():
    body = b'{"full_name": "o/\\ud83d\\ude00", "description": "caf\xc3\xa9 \xf0\x9f\x90\x8d", "topics": ["\\u00e9"], "n": 1}'
    assert reply(body).json() == {"full_name": "o/\U0001f600", "description": "café \U0001f40d", "topics": ["é"], "n": 1}
    assert reply(b"[]").json() == [] and reply(b"null").json() is None


def test_error_message_of_a_reply_with_a_lone_surrogate_is_storable():
    """A 404's `message` goes into a Rejected detail: it falls back to the body, decoded with replacement."""
    bad = Reply(404, "https://api.example/repos/o/r", {}, b'{"message": "Not Found \\ud800"}')
    assert is_utf8(bad.message()) and "Not Found" in bad.message()


# -- listing ---------------------------------------------------------------------------------


def search_body(fake: FakeGitHub, repos: list[FakeRepo], **change) -> dict:
    """A real search answer for `repos` with fields of its first item changed (None deletes)."""
    items = [fake.repo_object(r) for r in repos]
    for key, value in change.items():
        if value is None:
            del items[0][key]
        else:
            items[0][key] = value
    return {"total_count": len(items), "incomplete_results": False, "items": items}


@pytest.mark.parametrize(
    "make_body, says",
    [
        (lambda fake, repos: HTML, "body is not JSON"),
        (lambda fake, repos: (200, {}, search_body(fake, repos, full_name="o/\ud800")), "lone surrogate"),
        (lambda fake, repos: (200, {}, search_body(fake, repos, full_name=None)), "KeyError: 'full_name'"),
        (lambda fake, repos: (200, {}, search_body(fake, repos, full_name=12345)), "TypeError"),
        (lambda fake, repos: (200, {}, search_body(fake, repos, stargazers_count="many")), "TypeError"),
        (lambda fake, repos: (200, {}, search_body(fake, repos)["items"]), "AttributeError"),  # a list, not the object
        (lambda fake, repos: (200, {}, {**search_body(fake, repos), "total_count": "lots"}), "ValueError"),
    ],
    ids=["html", "surrogate-full-name", "no-full-name", "numeric-full-name", "string-stars", "list-body", "bad-total"],
)
def test_a_malformed_search_page_becomes_a_listing_failure_and_other_queries_go_on(github, tmp_path, make_body, says):  # noqa: F811
    mit = [FakeRepo(f"m/r{i}", {"a.py": b"a\n"}) for i in range(3)]
    apache = [FakeRepo(f"a/r{i}", {"a.py": b"a\n"}, license="apache-2.0") for i in range(2)]
    fake = github(mit + apache)
    fake.fault("search", None, make_body(fake, mit))  # the first query (MIT) gets it; the Apache-2.0 one is real
    state = CrawlState(str(tmp_path))
    listing = github_host(fake, licenses=("MIT", "Apache-2.0")).list_repositories(state)

    assert sorted(listing.repos) == ["a/r0", "a/r1"]
    (failure,) = listing.failures
    assert failure.reason == "listing-failed" and failure.detail.startswith("malformed reply:")
    assert says in failure.detail and is_utf8(failure.detail) and GITHUB_TOKEN not in failure.detail
    rejected = failure.rejected()
    assert rejected.stage == "read" and rejected.reason == "listing-failed" and is_utf8(rejected.detail)

    # Not saved: the next run asks for the page again, and now gets the real one.
    again = github_host(fake, licenses=("MIT", "Apache-2.0")).list_repositories(state)
    assert sorted(again.repos) == sorted(r.name for r in mit + apache) and not again.failures


def test_a_malformed_gitlab_projects_page_becomes_a_listing_failure(gitlab, tmp_path):  # noqa: F811
    fake = gitlab([FakeRepo(f"g/p{i}", {"a.py": b"a\n"}) for i in range(2)])
    fake.fault("projects", None, (200, {}, {"message": "a dict where the list of projects belongs"}))
    listing = gitlab_host(fake).list_repositories(CrawlState(str(tmp_path)))
    assert not listing.repos
    (failure,) = listing.failures
    assert failure.reason == "listing-failed" and failure.detail.startswith("malformed reply: AttributeError")


# -- fetching --------------------------------------------------------------------------------


def fetched(host, listed, state, name) -> list:
    return list(fetch_repo(host, listed[name], state, 1000))


@pytest.mark.parametrize(
    "answer, says",
    [
        (HTML, "body is not JSON"),
        ((200, {}, {"message": "an object, not a list"}), "KeyError: 0"),
        ((200, {}, [{"sha": None}]), "commit id None"),
        ((200, {}, [{"sha": "../../../orgs/x"}]), "is not a hex object name"),
        ((200, {}, [{"sha": "c" * 40, "commit": {"message": "fix \udc80"}}]), "lone surrogate"),
        ((200, {}, ["c" * 40]), "TypeError"),
    ],
    ids=["html", "object", "null-sha", "path-sha", "surrogate-in-message", "list-of-strings"],
)
def test_a_malformed_github_commits_reply_rejects_that_repository_for_now(github, tmp_path, answer, says):  # noqa: F811
    repos = [FakeRepo(f"o/r{i}", {f"m{i}.py": b"x = 1\n"}) for i in range(3)]
    fake = github(repos)
    fake.fault("commits", "o/r1", answer)
    state = CrawlState(str(tmp_path))
    host = github_host(fake)
    listed = host.list_repositories(state).repos

    (rejected,) = fetched(host, listed, state, "o/r1")
    reason = "bad-json" if "not JSON" in says else "malformed-reply"
    assert isinstance(rejected, Rejected) and (rejected.reason, rejected.repo, rejected.stage) == (reason, "o/r1", "read")
    assert rejected.detail.startswith("malformed reply:") and says in rejected.detail
    assert is_utf8(rejected.detail) and GITHUB_TOKEN not in rejected.detail
    assert fake.hits[("tarball", "o/r1")] == 0 and state.load_repo("github", "o/r1") is None  # not remembered
    for name, path in (("o/r0", "m0.py"), ("o/r2", "m2.py")):
        out = fetched(host, listed, state, name)
        assert [r.path for r in out if isinstance(r, RepoFile)] == [path] and isinstance(out[-1], RepoSnapshot)

    retried = fetched(host, listed, state, "o/r1")  # the next run tries again; the answer is real now
    assert [r.path for r in retried if isinstance(r, RepoFile)] == ["m1.py"]


@pytest.mark.parametrize(
    "endpoint, answer, says",
    [
        ("project", (200, {}, []), "AttributeError"),
        ("project", (200, {}, {"id": 1, "default_branch": "main", "star_count": "many", "license": None}), "stars is str"),
        ("project", (200, {}, {"id": 1, "default_branch": "main", "license": "MIT"}), "AttributeError"),
        ("languages", (200, {}, ["Python"]), "AttributeError"),
        ("languages", HTML, "body is not JSON"),
        ("commits", (200, {}, [{"id": 7}]), "commit id 7"),
        ("commits", (200, {}, [{"id": "\ud83d"}]), "lone surrogate"),
    ],
    ids=[
        "project-list",
        "project-string-stars",
        "project-string-license",
        "languages-list",
        "languages-html",
        "commit-number",
        "commit-surrogate",
    ],
)
def test_a_malformed_gitlab_reply_rejects_that_project_for_now(gitlab, tmp_path, endpoint, answer, says):  # noqa: F811
    repos = [FakeRepo(f"g/p{i}", {f"m{i}.py": b"x = 1\n"}) for i in range(2)]
    fake = gitlab(repos)
    fake.fault(endpoint, "g/p0", answer)
    state = CrawlState(str(tmp_path))
    host = gitlab_host(fake)
    listed = host.list_repositories(state).repos

    (rejected,) = fetched(host, listed, state, "g/p0")
    reason = "bad-json" if "not JSON" in says else "malformed-reply"
    assert (rejected.reason, rejected.repo) == (reason, "g/p0") and says in rejected.detail
    assert is_utf8(rejected.detail) and state.load_repo("gitlab", "g/p0") is None
    assert fake.hits[("archive", "g/p0")] == 0
    assert [r.path for r in fetched(host, listed, state, "g/p1") if isinstance(r, RepoFile)] == ["m1.py"]
    assert [r.path for r in fetched(host, listed, state, "g/p0") if isinstance(r, RepoFile)] == ["m0.py"]


def test_a_lone_surrogate_in_an_error_message_leaves_a_storable_rejection(github, tmp_path):  # noqa: F811
    fake = github([FakeRepo("o/gone", {"a.py": b"a\n"})])
    fake.fault("commits", "o/gone", (404, {}, {"message": "Not Found \ud800"}))
    state = CrawlState(str(tmp_path))
    host = github_host(fake)
    (rejected,) = fetched(host, host.list_repositories(state).repos, state, "o/gone")
    assert rejected.reason == "vanished" and is_utf8(rejected.detail)
    pa.array([rejected.detail], pa.string())  # what the Parquet writer does with it


# -- the whole run ---------------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_replies_do_not_stop_the_run(tmp_path, servers):  # noqa: F811
    """Through the CLI: a surrogate-laden search page and a proxy page for one commit list are counted, the rest is written."""
    mit = [FakeRepo("m/one", {"one.py": code("one")})]
    apache = [
        FakeRepo("a/two", {"two.py": code("two")}, license="apache-2.0"),
        FakeRepo("a/three", {"three.py": code("three")}, license="apache-2.0"),
    ]
    fake = FakeGitHub(mit + apache, token=PIPELINE_TOKEN)
    servers.append(fake)
    fake.fault("search", None, (200, {}, search_body(fake, mit, full_name="m/\udbff")))
    fake.fault("commits", "a/three", HTML)
    config_path = write_config(tmp_path, github=fake)
    config = yaml.safe_load((tmp_path / "crawl.yaml").read_text())
    config["sources"]["github"]["licenses"] = ["MIT", "Apache-2.0"]
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f)
    out = tmp_path / "out"

    run_cli("run", "--config", config_path, "--out", str(out))
    version = out / "crawl" / "v0001"
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["counts"]["read"]["rejected"] == {"listing-failed": 1, "bad-json": 1}
    assert manifest["source_github"]["listing_failures"] == 1
    assert {(d["repo"], d["path"]) for d in read_rows(version, "documents")} == {("a/two", "two.py")}
    reasons = {(r["reason"], r["repo"]) for r in read_rows(version, "rejected")}
    assert reasons == {("listing-failed", None), ("bad-json", "a/three")}
