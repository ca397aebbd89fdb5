"""Whatever one repository's requests raise is that repository's rejection, with a reason.

Against the fake GitHub on 127.0.0.1: a redirect loop, a gzip body that does not decode,
a body that is not JSON, endless 500s and a 401. Each rejects
its repository and the next repository is fetched as usual (after a 401, the client
sends nothing more: the token is no good).
"""

from __future__ import annotations

import http.server
import multiprocessing
import tracemalloc

import pytest

from schemas.config import load_config
from schemas.records import Rejected, RepoFile
from schemas.sources_config import HttpSettings
from tests.transforms.sources.network_fakes import FakeGitHub, FakeGitLab, FakeRepo
from tests.transforms.sources.test_github_source import github, host_for  # noqa: F401 (fixture)
from tests.transforms.sources.test_network_pipeline import GITHUB_TOKEN, GITLAB_TOKEN, code, servers, write_config  # noqa: F401
from transforms.record_fn import StageResult, run_record_fn
from transforms.sources.crawl.github import GitHubHost
from transforms.sources.crawl.gitlab import GitLabHost
from transforms.sources.crawl.http_client import ApiClient
from transforms.sources.crawl.source import CrawlRepos, FetchRepoFn, fetch_repo, list_crawl
from transforms.sources.crawl.state import CrawlState, encode_sorted

BROKEN_GZIP = (200, {"Content-Encoding": "gzip", "Content-Type": "application/json"}, b"\x1f\x8b\x08\x00not a gzip stream")


def redirect_loop(fake: FakeGitHub, repo: FakeRepo) -> list:
    """The tarball URL answering with a redirect to itself, more often than requests follows (30)."""
    url = f"{fake.url}/repos/{repo.name}/tarball/{repo.sha}"
    return [(302, {"Location": url}, "")] * 40


FAULTS = {
    "redirect-loop": ("tarball", redirect_loop),
    "bad-encoding": ("commits", lambda fake, repo: [BROKEN_GZIP] * 50),
    "bad-json": ("commits", lambda fake, repo: [(200, {"Content-Type": "application/json"}, '[{"sha": "abc",')]),
    "http-500": ("commits", lambda fake, repo: [(500, {}, "<html>Internal Server Error</html>")] * 50),  # endless
    "unauthorized": ("commits", lambda fake, repo: [(401, {}, {"message": "Bad credentials"})]),
}


def add_fault(fake, repo: FakeRepo, reason: str) -> None:
    endpoint, answers = FAULTS[reason]
    fake.fault(endpoint, repo.name, *answers(fake, repo))


@pytest.mark.parametrize("reason", sorted(FAULTS))
def test_each_fault_rejects_its_repository_with_its_reason(github, tmp_path, reason):  # noqa: F811
    bad, good = FakeRepo("o/bad", {"b.py": b"b = 1\n"}), FakeRepo("o/good", {"g.py": b"g = 1\n"})
    fake = github([bad, good])
    add_fault(fake, bad, reason)
    state = CrawlState(str(tmp_path))
    host = host_for(fake)
    listed = host.list_repositories(state).repos

    (rejected,) = list(fetch_repo(host, listed["o/bad"], state, 1000))
    assert isinstance(rejected, Rejected) and (rejected.reason, rejected.repo, rejected.stage) == (reason, "o/bad", "read")
    assert rejected.detail
    saved = state.load_repo("github", "o/bad")
    assert (saved is not None) == (reason == "redirect-loop")  # only a redirect loop comes back the same way

    requests_before = host.client.requests
    after = list(fetch_repo(host, listed["o/good"], state, 1000))
    if reason == "unauthorized":  # a refused token: nothing more is sent with it
        assert [r.reason for r in after] == ["unauthorized"] and host.client.requests == requests_before
        assert "not sent" in after[0].detail and fake.hits[("commits", "o/good")] == 0
    else:
        assert [r.path for r in after if isinstance(r, RepoFile)] == ["g.py"]


def serve_archive(size: int, ports) -> None:
    """A server of one gzip-looking body, in a process of its own: its buffers are not the client's to count."""
    body = b"\x1f\x8b" + bytes(size)

    class Archive(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Archive)
    ports.put(server.server_port)
    server.serve_forever()


def test_an_archive_is_held_once_in_memory_not_copied():
    """The body is read into a BytesIO whose buffer becomes the reply's bytes: no second copy."""
    size = 50_000_000
    context = multiprocessing.get_context("fork")
    ports = context.Queue()
    server = context.Process(target=serve_archive, args=(size, ports), daemon=True)
    server.start()
    try:
        client = ApiClient(f"http://127.0.0.1:{ports.get(timeout=30)}", HttpSettings(max_retries=0))
        tracemalloc.start()
        reply = client.get("archive", max_bytes=size + 2)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        server.terminate()
        server.join()
    assert len(reply.body) == size + 2
    assert peak < 1.5 * len(reply.body), f"peak {peak:,} bytes for a body of {len(reply.body):,}"


def read_stage(crawl: CrawlRepos) -> StageResult:
    """What a listed crawl's read stage gives, without Beam: its RecordFn over the listing's lines, one
    token's share (the composite groups the lines by token; it runs in test_network_pipeline and, on
    worker processes, in test_rate_limits)."""
    lines = [encode_sorted(item) for item in CrawlState(crawl.state_dir).read_listing()]
    return run_record_fn(FetchRepoFn(crawl.host_cls, crawl.section, crawl.state_dir, *crawl.sizes), [(0, lines)])


def test_a_run_with_every_fault_succeeds_and_accounts_for_each_repository(tmp_path, servers):  # noqa: F811
    """As a run lists and reads: the GitHub faults on one crawl, a 401 on the GitLab crawl (its own client)."""
    reasons = ["bad-encoding", "bad-json", "http-500", "redirect-loop"]
    repos = [FakeRepo(f"f/{reason}", {f"{i}.py": code(f"m{i}")}) for i, reason in enumerate(reasons)]
    repos.append(FakeRepo("f/fine", {"fine.py": code("fine")}))
    hub = FakeGitHub(repos, token=GITHUB_TOKEN)
    for repo, reason in zip(repos, reasons):
        add_fault(hub, repo, reason)
    refused = FakeRepo("g/refused", {"r.py": code("refused")})
    lab = FakeGitLab([refused], token=GITLAB_TOKEN)
    lab.fault("project", "g/refused", (401, {}, {"message": "401 Unauthorized"}))
    servers += [hub, lab]
    config = load_config(write_config(tmp_path, github=hub, gitlab=lab))

    on_github, on_gitlab = (read_stage(list_crawl(host, config, str(tmp_path / "out"))) for host in (GitHubHost, GitLabHost))
    for read in (on_github, on_gitlab):
        assert read.counts["in"] == read.counts["kept"] + sum(read.counts["rejected"].values())
    assert (
        on_github.counts["rejected"] == {reason: 1 for reason in reasons}
        and on_github.counts["stats"]["github.repositories"] == 5
    )
    assert on_gitlab.counts["rejected"] == {"unauthorized": 1} and not on_gitlab.kept
    rejected = {(r.repo, r.reason, r.stage) for r in on_github.rejected + on_gitlab.rejected}
    assert rejected == {(f"f/{reason}", reason, "read") for reason in reasons} | {("g/refused", "unauthorized", "read")}
    assert {(f.repo, f.path) for f in on_github.kept} == {("f/fine", "fine.py")}
