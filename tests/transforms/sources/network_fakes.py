"""Local HTTP servers that answer like the GitHub and GitLab REST APIs (BigQuery: bigquery_fakes.py).

Each fake is a WSGI app served by werkzeug on 127.0.0.1 in a thread. They answer in the
documented JSON shapes (search results, repository and project objects, license objects,
commit lists, rate-limit headers) and serve
real tar.gz archives. Faults are scripted per endpoint and repository: a list of
(status, headers, body) answers served before the real one. Every request is counted;
an archive request held at the gate (FakeApi.gate_after) is answered 503 and not counted as served.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import io
import json
import logging
import re
import tarfile
import threading
import time
import urllib.parse

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request in test output


def sha_of(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def make_tarball(top: str, files: dict, comment: str | None = None) -> bytes:
    """A gzip'd tar like `git archive`: a top directory, then the files in order.

    A value is the file's bytes, or ("symlink", target), ("hardlink", target), ("device",).
    A key starting with "/" or holding ".." is used as the member name as it is.
    """
    raw = io.BytesIO()
    pax = {"comment": comment} if comment else {}
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, pax_headers=pax) as tar:
        top_info = tarfile.TarInfo(top + "/")
        top_info.type, top_info.mode = tarfile.DIRTYPE, 0o775
        tar.addfile(top_info)
        for path, spec in files.items():
            name = path if path.startswith("/") or ".." in path.split("/") else f"{top}/{path}"
            info = tarfile.TarInfo(name)
            info.mode = 0o664
            if isinstance(spec, bytes):
                info.size = len(spec)
                tar.addfile(info, io.BytesIO(spec))
                continue
            kind = spec[0]
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "device": tarfile.CHRTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = spec[1] if kind == "symlink" else f"{top}/{spec[1]}"
            tar.addfile(info)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


class FakeServer:
    """Serves a WSGI app on 127.0.0.1 (threaded, so a blocked request does not stop others)."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers or {}, content_type="application/json; charset=utf-8")


def scripted(answer) -> Response:
    status, headers, body = answer
    if isinstance(body, (dict, list)):
        return json_response(body, status, headers)
    return Response(body, status=status, headers=headers)


@dataclasses.dataclass
class FakeRepo:
    """A repository both fakes can serve: its files at one commit and its metadata."""

    name: str  # owner/name (GitHub) or namespace/path (GitLab)
    files: dict
    language: str = "Python"
    languages: dict | None = None  # GitLab's language shares; default {language: 100}
    license: str | None = "mit"  # the licensee key the API reports
    stars: int = 0
    created_at: str = "2020-01-01T00:00:00Z"
    last_activity_at: str | None = None  # GitLab: default created_at
    default_branch: str = "main"
    fork: bool = False
    vanished: bool = False  # listed, then gone: 404 from every later request
    empty: bool = False
    truncate: bool = False  # serve only the first 60% of the archive's bytes
    project_id: int = 0

    @property
    def sha(self) -> str:
        return sha_of(self.name, json.dumps(sorted(self.files), default=str))

    def tarball(self, top: str) -> bytes:
        data = make_tarball(top, self.files, comment=self.sha)
        return data[: int(len(data) * 0.6)] if self.truncate else data


LICENSE_NAMES = {
    "mit": ("MIT", "MIT License"),
    "apache-2.0": ("Apache-2.0", "Apache License 2.0"),
    "bsd-3-clause": ("BSD-3-Clause", 'BSD 3-Clause "New" or "Revised" License'),
    "bsd-2-clause": ("BSD-2-Clause", 'BSD 2-Clause "Simplified" License'),
    "gpl-3.0": ("GPL-3.0", "GNU General Public License v3.0"),
}


class FakeApi:
    """What the fakes share: scripted faults, counters, token check, an archive gate."""

    def __init__(self, repos: list[FakeRepo], token: str | None = None, more_tokens: tuple = ()):
        self.repos = {r.name: r for r in repos}
        self.token = token
        self.tokens = {t for t in (token, *more_tokens) if t}  # every token the API takes
        self.faults = collections.defaultdict(list)  # (endpoint, repo name or None) → answers
        self.hits = collections.Counter()  # (endpoint, repo name or None) → requests
        self.archives_served = collections.Counter()  # repo name → archives served
        self.tarballs = {}  # (repo name, top directory) → bytes, built once
        self.auth_failures = []
        self.gate_after: int | None = None  # block archive requests once this many were served
        self.gate_open = threading.Event()
        self.blocked = 0
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds each request takes (so that concurrent requests overlap)
        self.in_flight = self.max_in_flight = 0
        self.in_flight_by_token = collections.Counter()  # Authorization header → requests in flight now
        self.max_in_flight_by_token = collections.Counter()  # ... and the most at once
        self.concurrency_cap: int | None = None  # more requests at once with one token: a secondary-limit 403
        self.secondary_limited = 0
        self.budget: tuple[int, float] | None = None  # (requests, window seconds) per token on budgeted paths
        self.spent = collections.Counter()  # (token, window) → requests
        self.over_budget = 0  # budgeted requests answered 403 because the window's budget was spent
        self.budgeted_times = []  # when each budgeted request within the budget arrived (time.time())
        self.server = FakeServer(self.wsgi)

    @property
    def url(self) -> str:
        return self.server.url

    def fault(self, endpoint: str, repo: str | None, *answers) -> None:
        self.faults[(endpoint, repo)].extend(answers)

    def close(self) -> None:
        self.gate_open.set()
        self.server.close()

    def wsgi(self, environ, start_response):
        request = Request(environ)
        token = request.headers.get("Authorization")
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.in_flight_by_token[token] += 1
            mine = self.in_flight_by_token[token]
            self.max_in_flight_by_token[token] = max(self.max_in_flight_by_token[token], mine)
            crowded = token is not None and self.concurrency_cap is not None and mine > self.concurrency_cap
            self.secondary_limited += crowded
        try:
            time.sleep(self.delay)
            if crowded:
                response = json_response({"message": "You have exceeded a secondary rate limit."}, 403, {"Retry-After": "1"})
            else:
                response = self.limited(request) or self.route(request)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.in_flight_by_token[token] -= 1
        return response(environ, start_response)

    def budgeted(self, request: Request) -> bool:
        """Whether a request counts against the token's budget (subclasses say which paths do)."""
        return False

    def limited(self, request: Request) -> Response | None:
        """A 403 once the token's budget for this window is spent (GitHub's primary limit), else None.

        Answers within the budget get their X-RateLimit headers in `route` through `rate_headers`.
        """
        if self.budget is None or not self.budgeted(request):
            return None
        requests, window = self.budget
        now = time.time()
        key = (request.headers.get("Authorization"), int(now // window))
        with self.lock:
            self.spent[key] += 1
            used = self.spent[key]
            self.over_budget += used > requests
        reset = str(int((key[1] + 1) * window) + 1)  # whole epoch seconds, as the header says it
        headers = {
            "X-RateLimit-Limit": str(requests),
            "X-RateLimit-Remaining": str(max(0, requests - used)),
            "X-RateLimit-Reset": reset,
            "X-RateLimit-Resource": "core",
        }
        if used > requests:
            return json_response({"message": "API rate limit exceeded for user."}, 403, headers)
        with self.lock:
            self.budgeted_times.append(now)
        request.environ["fake.rate_headers"] = headers
        return None

    def answer(self, endpoint: str, repo: str | None, request: Request, authorized: bool, make) -> Response:
        key = (endpoint, repo)
        with self.lock:
            self.hits[key] += 1
            fault = self.faults[key].pop(0) if self.faults[key] else None
        if not authorized:
            self.auth_failures.append(request.path)
            return json_response({"message": "Bad credentials"}, 401)
        if fault is not None:
            return scripted(fault)
        return make()

    def serve_archive(self, repo: FakeRepo, top: str) -> Response:
        with self.lock:
            wait = self.gate_after is not None and sum(self.archives_served.values()) >= self.gate_after
            self.blocked += wait
        if wait and not self.gate_open.wait(timeout=60):
            return json_response({"message": "gate timeout"}, 503)
        if wait:
            return json_response({"message": "the client went away"}, 503)
        with self.lock:
            if (repo.name, top) not in self.tarballs:
                self.tarballs[(repo.name, top)] = repo.tarball(top)
            data = self.tarballs[(repo.name, top)]
            self.archives_served[repo.name] += 1
        return Response(
            data,
            headers={"Content-Length": str(len(data)), "Content-Disposition": f"attachment; filename={top}.tar.gz"},
            content_type="application/x-gzip",
        )


class FakeGitHub(FakeApi):
    """GitHub REST v3: /search/repositories, /repos/{o}/{r}/commits, tarball via codeload."""

    SEARCH_CAP = 1000

    def __init__(self, repos, token=None, search_remaining: int = 30, more_tokens: tuple = ()):
        super().__init__(repos, token, more_tokens)
        self.search_remaining = search_remaining

    def authorized(self, request: Request) -> bool:
        if request.path.startswith("/codeload/"):
            if "Authorization" in request.headers:
                self.auth_failures.append("token sent to codeload")
            return True
        return self.token is None or request.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens

    def budgeted(self, request: Request) -> bool:
        return request.path.startswith("/repos/")

    def route(self, request: Request) -> Response:
        response = self.routed(request)
        response.headers.extend(request.environ.get("fake.rate_headers", {}))
        return response

    def routed(self, request: Request) -> Response:
        path, ok = request.path, self.authorized(request)
        if path == "/search/repositories":
            return self.answer("search", None, request, ok, lambda: self.search(request))
        if path == "/rate_limit":
            return self.answer("rate_limit", None, request, ok, self.rate_limit)
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/(commits|tarball/[0-9a-f]+)", path)
        if m and m.group(1) in self.repos:
            repo = self.repos[m.group(1)]
            endpoint = "commits" if m.group(2) == "commits" else "tarball"
            make = (lambda: self.commits(repo)) if endpoint == "commits" else (lambda: self.tarball(repo, request))
            return self.answer(endpoint, repo.name, request, ok, make)
        m = re.fullmatch(r"/codeload/([^/]+/[^/]+)/legacy\.tar\.gz/([0-9a-f]+)", path)
        if m and m.group(1) in self.repos:
            repo = self.repos[m.group(1)]
            owner, name = repo.name.split("/")
            return self.answer(
                "archive", repo.name, request, ok, lambda: self.serve_archive(repo, f"{owner}-{name}-{repo.sha[:7]}")
            )
        return self.not_found()

    @staticmethod
    def not_found() -> Response:
        return json_response({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}, 404)

    def rate_limit(self) -> Response:
        """GET /rate_limit: the token's budgets (this request does not count against them)."""
        reset = int(time.time()) + 3600
        core = {"limit": 5000, "used": 0, "remaining": 5000, "reset": reset}
        search = {"limit": 30, "used": 30 - self.search_remaining, "remaining": self.search_remaining, "reset": reset}
        return json_response({"resources": {"core": core, "search": search}, "rate": core})

    def search(self, request: Request) -> Response:
        q = request.args["q"]
        m = re.fullmatch(r'language:"(.+)" license:(\S+) fork:false created:(\S+)\.\.(\S+)', q)
        if not m:
            return json_response({"message": "Validation Failed", "errors": [{"code": "invalid"}]}, 422)
        language, key, start, end = m.groups()
        matches = sorted(
            (
                r
                for r in self.repos.values()
                if r.language == language and r.license == key and not r.fork and start <= r.created_at <= end
            ),
            key=lambda r: r.name,
        )
        per_page, page = int(request.args.get("per_page", 30)), int(request.args.get("page", 1))
        served = matches[: self.SEARCH_CAP]
        items = served[(page - 1) * per_page : page * per_page]
        with self.lock:
            self.search_remaining = max(0, self.search_remaining - 1)
            remaining = self.search_remaining
        headers = {
            "X-RateLimit-Limit": "30",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(time.time()) + 1),
            "X-RateLimit-Resource": "search",
        }
        last = max(1, -(-len(served) // per_page))
        links = []
        base = f"{self.url}/search/repositories?" + urllib.parse.urlencode({"q": q, "per_page": per_page})
        if page < last:
            links.append(f'<{base}&page={page + 1}>; rel="next"')
            links.append(f'<{base}&page={last}>; rel="last"')
        if links:
            headers["Link"] = ", ".join(links)
        body = {"total_count": len(matches), "incomplete_results": False, "items": [self.repo_object(r) for r in items]}
        return json_response(body, headers=headers)

    def repo_object(self, repo: FakeRepo) -> dict:
        owner, name = repo.name.split("/")
        spdx, title = LICENSE_NAMES.get(repo.license, ("NOASSERTION", "Other"))
        license = (
            None
            if repo.license is None
            else {
                "key": repo.license,
                "name": title,
                "spdx_id": spdx,
                "node_id": "MDc6TGljZW5zZTEz",
                "url": f"https://api.github.com/licenses/{repo.license}",
            }
        )
        return {
            "id": int(repo.sha[:6], 16),
            "node_id": "R_kgDO" + repo.sha[:8],
            "name": name,
            "full_name": repo.name,
            "private": False,
            "owner": {"login": owner, "id": 1, "type": "User"},
            "html_url": f"https://github.com/{repo.name}",
            "description": None,
            "fork": repo.fork,
            "url": f"https://api.github.com/repos/{repo.name}",
            "created_at": repo.created_at,
            "updated_at": repo.created_at,
            "pushed_at": repo.created_at,
            "size": 10,
            "stargazers_count": repo.stars,
            "watchers_count": repo.stars,
            "language": repo.language,
            "forks_count": 0,
            "archived": False,
            "disabled": False,
            "open_issues_count": 0,
            "license": license,
            "topics": [],
            "visibility": "public",
            "default_branch": repo.default_branch,
            "score": 1.0,
        }

    def commits(self, repo: FakeRepo) -> Response:
        if repo.vanished:
            return self.not_found()
        if repo.empty:
            return json_response(
                {"message": "Git Repository is empty.", "documentation_url": "https://docs.github.com/rest"}, 409
            )
        return json_response(
            [
                {
                    "sha": repo.sha,
                    "node_id": "C_" + repo.sha[:8],
                    "commit": {"message": "initial", "committer": {"date": repo.created_at}},
                    "url": f"https://api.github.com/repos/{repo.name}/commits/{repo.sha}",
                    "parents": [],
                }
            ]
        )

    def tarball(self, repo: FakeRepo, request: Request) -> Response:
        if repo.vanished:
            return self.not_found()
        # Like GitHub: a redirect to codeload, another host (the client must not send the token there).
        location = f"http://localhost:{self.server.server.server_port}/codeload/{repo.name}/legacy.tar.gz/{repo.sha}"
        return Response("", status=302, headers={"Location": location})


class FakeGitLab(FakeApi):
    """GitLab REST v4 under /api/v4: projects (keyset or offset pages), license, languages, commits, archive."""

    def __init__(self, repos, token=None, keyset: bool = True, more_tokens: tuple = ()):
        for i, repo in enumerate(repos):
            repo.project_id = repo.project_id or 1000 + i
        super().__init__(repos, token, more_tokens)
        self.by_id = {r.project_id: r for r in repos}
        self.keyset = keyset
        self.redirect_archives = False
        self.redirected = {}  # /download/... path → repository

    SIMPLE_FIELDS = (
        "id",
        "name",
        "name_with_namespace",
        "path",
        "path_with_namespace",
        "created_at",
        "default_branch",
        "web_url",
        "star_count",
        "forks_count",
        "last_activity_at",
        "namespace",
    )

    @staticmethod
    def token_of(request: Request) -> str | None:
        """The token as GitLab takes it: `Authorization: Bearer` or `PRIVATE-TOKEN`."""
        bearer = request.headers.get("Authorization", "")
        return bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else request.headers.get("PRIVATE-TOKEN")

    def route(self, request: Request) -> Response:
        token = self.token_of(request)
        ok = self.token is None or token is None or token in self.tokens  # public projects answer anonymous requests too
        path = request.path.removeprefix("/api/v4")
        if path.startswith("/download/"):  # another host serving a redirected archive: no token may arrive
            if token is not None:
                self.auth_failures.append("token sent to the download host")
            return self.serve_archive(self.redirected[path], path.rsplit("/", 1)[1])
        if path == "/user":  # unlike the projects, it needs a token
            ok = ok and token is not None
            return self.answer(
                "user", None, request, ok, lambda: json_response({"id": 1, "username": "crawler", "state": "active"})
            )
        if path == "/projects":
            simple = token is None  # like GitLab: an anonymous listing gets the simple fields only
            return self.answer("projects", None, request, ok, lambda: self.projects(request, simple))
        m = re.fullmatch(r"/projects/(\d+)(|/languages|/repository/commits|/repository/archive\.tar\.gz)", path)
        if not m or int(m.group(1)) not in self.by_id:
            return json_response({"message": "404 Project Not Found"}, 404)
        repo = self.by_id[int(m.group(1))]
        endpoint = {
            "": "project",
            "/languages": "languages",
            "/repository/commits": "commits",
            "/repository/archive.tar.gz": "archive",
        }[m.group(2)]
        return self.answer(endpoint, repo.name, request, ok, lambda: self.project_part(endpoint, repo, request))

    def headers(self) -> dict:
        return {"RateLimit-Limit": "2000", "RateLimit-Remaining": "1999", "RateLimit-Reset": str(int(time.time()) + 60)}

    def project_object(self, repo: FakeRepo, with_license: bool = False) -> dict:
        namespace, _, path = repo.name.rpartition("/")
        project = {
            "id": repo.project_id,
            "name": path,
            "path": path,
            "path_with_namespace": repo.name,
            "name_with_namespace": repo.name.replace("/", " / "),
            "default_branch": repo.default_branch,
            "visibility": "public",
            "star_count": repo.stars,
            "forks_count": 0,
            "created_at": repo.created_at,
            "last_activity_at": repo.last_activity_at or repo.created_at,
            "empty_repo": repo.empty,
            "archived": False,
            "web_url": f"https://gitlab.com/{repo.name}",
            "namespace": {"path": namespace, "kind": "group"},
        }
        if repo.fork:
            project["forked_from_project"] = {"id": 1, "path_with_namespace": "upstream/original"}
        if with_license:
            spdx, title = LICENSE_NAMES.get(repo.license, ("", "Other"))
            project["license_url"] = None
            project["license"] = (
                None
                if repo.license is None
                else {
                    "key": repo.license,
                    "name": title,
                    "nickname": None,
                    "html_url": f"https://opensource.org/licenses/{spdx}",
                    "source_url": None,
                }
            )
        return project

    def projects(self, request: Request, simple: bool = False) -> Response:
        args = request.args
        language = args.get("with_programming_language")
        before, after = args.get("last_activity_before"), args.get("last_activity_after")
        matches = sorted(
            (
                r
                for r in self.repos.values()
                if language in (r.languages or {r.language: 100})
                and (before is None or (r.last_activity_at or r.created_at) <= before)
                and (after is None or (r.last_activity_at or r.created_at) >= after)
            ),
            key=lambda r: r.project_id,
        )
        per_page = int(args.get("per_page", 20))
        headers = self.headers()
        if args.get("pagination") == "keyset" and self.keyset:
            id_after = int(args.get("id_after", 0))
            rest = [r for r in matches if r.project_id > id_after]
            page = rest[:per_page]
            if len(rest) > per_page:
                query = {k: v for k, v in args.items() if k != "id_after"}
                query["id_after"] = page[-1].project_id
                headers["Link"] = f'<{self.url}/api/v4/projects?{urllib.parse.urlencode(query)}>; rel="next"'
        else:
            number = int(args.get("page", 1))
            pages = max(1, -(-len(matches) // per_page))
            page = matches[(number - 1) * per_page : number * per_page]
            headers.update(
                {
                    "X-Page": str(number),
                    "X-Per-Page": str(per_page),
                    "X-Total": str(len(matches)),
                    "X-Total-Pages": str(pages),
                    "X-Next-Page": str(number + 1) if number < pages else "",
                    "X-Prev-Page": str(number - 1) if number > 1 else "",
                }
            )
        objects = [self.project_object(r) for r in page]
        if simple:
            objects = [{k: o[k] for k in self.SIMPLE_FIELDS} for o in objects]
        return json_response(objects, headers=headers)

    def project_part(self, endpoint: str, repo: FakeRepo, request: Request) -> Response:
        if repo.vanished:
            return json_response({"message": "404 Project Not Found"}, 404)
        if endpoint == "project":
            return json_response(self.project_object(repo, request.args.get("license") == "true"), headers=self.headers())
        if endpoint == "languages":
            return json_response(repo.languages or {repo.language: 100.0}, headers=self.headers())
        if endpoint == "commits":
            if repo.empty:
                return json_response([], headers=self.headers())
            return json_response(
                [
                    {
                        "id": repo.sha,
                        "short_id": repo.sha[:8],
                        "title": "initial",
                        "created_at": repo.created_at,
                        "parent_ids": [],
                        "message": "initial",
                        "author_name": "t",
                        "committed_date": repo.created_at,
                    }
                ],
                headers=self.headers(),
            )
        if request.args.get("sha") != repo.sha:
            return json_response({"message": "404 Not Found"}, 404)
        path = repo.name.rpartition("/")[2]
        top = f"{path}-{repo.sha}-{repo.sha}"
        if self.redirect_archives:  # to another host name (localhost, not 127.0.0.1), as a CDN would serve it
            download = f"/download/{repo.project_id}/{top}"
            self.redirected[download] = repo
            port = self.server.server.server_port
            return Response("", status=302, headers={"Location": f"http://localhost:{port}/api/v4{download}"})
        return self.serve_archive(repo, top)


class FakeSecretManager:
    """Secret Manager's REST API v1: versions.access (GET /v1/{name}:access), payload base64 with its CRC32C."""

    def __init__(self, secrets: dict[str, str]):
        self.secrets = secrets  # projects/P/secrets/S/versions/V → value
        self.accessed = []
        self.server = FakeServer(self.wsgi)

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.close()

    def wsgi(self, environ, start_response):
        import base64

        import google_crc32c

        request = Request(environ)
        name = request.path.removeprefix("/v1/").removesuffix(":access")
        self.accessed.append(name)
        if name not in self.secrets:
            secret = name.split("/versions/")[0]
            body = {"error": {"code": 404, "message": f"Secret [{secret}] not found or has no versions.", "status": "NOT_FOUND"}}
            return json_response(body, 404)(environ, start_response)
        data = self.secrets[name].encode()
        payload = {"data": base64.b64encode(data).decode(), "dataCrc32c": str(google_crc32c.value(data))}
        return json_response({"name": name, "payload": payload})(environ, start_response)
