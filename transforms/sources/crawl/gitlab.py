"""GitLab (REST API v4): public non-fork projects by main language and license (paper §3.1).

Listing: `/projects?visibility=public&with_programming_language=...`, one listing per
language, ordered by id and followed page by page, keeping the projects created by
`created_until` (the snapshot date; `active_from`/`active_until` filter by activity
only when set): keyset pagination's Link header
when the server gives one, else offset pagination's X-Next-Page (X-Total-Pages says how
many). Forks (items with `forked_from_project`) are left out; a listing without a token
gets GitLab's simple fields, which do not say, so the project endpoint is checked again.

Fetching: the project endpoint with `license=true` gives the license (a licensee key,
mapped to SPDX), star_count and default branch; a fork, a license not in `licenses` (or a
license key with no SPDX mapping) or a main
language (largest share of `/languages`) not in `languages` rejects the project before
its archive is downloaded. The default branch is pinned to a commit, and the archive
at that commit is read like GitHub's.
"""

from __future__ import annotations

import logging
import urllib.parse

from transforms.sources.common import spdx_of_key
from transforms.sources.crawl.github import parse_time
from transforms.sources.crawl.hosts import Host, Listing, RemoteRepo, RepoUnavailable, StopListing
from transforms.sources.crawl.http_client import Reply
from transforms.sources.crawl.state import CrawlState

log = logging.getLogger(__name__)

PER_PAGE = 100  # GitLab's largest page


def repo_from_project(project: dict) -> dict | None:
    """A project list item as RemoteRepo fields (None for a fork)."""
    if project.get("forked_from_project"):
        return None
    return dict(
        source="gitlab",
        repo=project["path_with_namespace"],
        api_id=str(project["id"]),
        default_branch=project.get("default_branch"),
        stars=project.get("star_count"),
        license=None,  # the list does not carry it; prepare() asks the project endpoint
        pushed_at=project.get("last_activity_at"),
        created_at=project.get("created_at"),
    )


def created_by(until: str | None):
    """The listing's filter: projects created by `until` (the snapshot date), whatever their activity since.

    GitLab's /projects has no creation-date filter, so it is applied to each listed item
    (`created_at`); `last_activity_before` would keep only projects abandoned since then.
    """
    if until is None:
        return None
    limit = parse_time(until)
    return lambda repo: repo.get("created_at") is None or parse_time(repo["created_at"]) <= limit


def next_page_url(reply: Reply) -> str | None:
    """The next page: the Link header's (keyset), else the current URL with page=X-Next-Page."""
    if "next" in reply.links:
        return reply.links["next"]
    next_page = reply.headers.get("X-Next-Page", "")
    if not next_page.isdigit():
        return None
    parts = urllib.parse.urlsplit(reply.url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["page"] = next_page
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(sorted(query.items()))))


class GitLabHost(Host):
    source = "gitlab"
    token_check = "user"  # the token's user; 401 for a revoked or expired token
    # GitLab takes a personal access token as `Authorization: Bearer` too; unlike PRIVATE-TOKEN,
    # requests drops that header when a redirect leaves the API's host.

    def list_repositories(self, state: CrawlState) -> Listing:
        section = self.section
        listing = Listing(section.max_repositories, keep=created_by(section.created_until))
        if not self.client.authenticated:
            log.warning(
                "sources.gitlab: no token, so GitLab lists projects with its simple fields only, without "
                "forked_from_project; forks are found (and rejected as `fork`) only when each project is fetched. "
                "Set the token (sources.gitlab.token_env or token_secret) to leave them out of the listing."
            )
        try:
            for language in section.languages:
                params = {
                    "visibility": "public",
                    "with_programming_language": language,
                    "order_by": "id",
                    "sort": "asc",
                    "pagination": "keyset",
                    "per_page": PER_PAGE,
                }
                if section.active_from:
                    params["last_activity_after"] = section.active_from
                if section.active_until:
                    params["last_activity_before"] = section.active_until
                self.follow(state, listing, self.page(state, listing, "projects", params))
                if listing.full:
                    break
        except StopListing:
            pass
        return listing

    def read_page(self, reply: Reply) -> dict:
        projects = reply.json()
        total = reply.headers.get("X-Total", "")
        return {
            "repos": [r for r in map(repo_from_project, projects) if r is not None],
            "next": next_page_url(reply),
            "total": int(total) if total.isdigit() else None,
        }

    def prepare(self, repo: RemoteRepo) -> RemoteRepo:
        project = self.check(self.client.get(f"projects/{repo.api_id}", {"license": "true"}), "project").json()
        if project.get("forked_from_project"):  # a listing without a token does not say so; this answer does
            raise RepoUnavailable("fork", "forked from another project")
        if project.get("empty_repo"):
            raise RepoUnavailable("empty-repository", "the project has no commits")
        key = (project.get("license") or {}).get("key")
        license = spdx_of_key(key)
        if key and license is None:  # a license GitLab names that we cannot map: not one we allow
            raise RepoUnavailable("license-not-allowed", f"license key {str(key)[:60]!r} has no SPDX id among the allowed ones")
        if license is not None and license not in self.section.licenses:
            raise RepoUnavailable("license-not-allowed", f"{license} is not in sources.gitlab.licenses")
        shares = self.check(self.client.get(f"projects/{repo.api_id}/languages"), "languages").json()
        main = max(sorted(shares), key=shares.get) if shares else None
        if main not in self.section.languages:
            raise RepoUnavailable("not-main-language", f"main language {main} is not in sources.gitlab.languages")
        return RemoteRepo(
            source=repo.source,
            repo=repo.repo,
            api_id=repo.api_id,
            default_branch=project.get("default_branch") or repo.default_branch,
            stars=project.get("star_count", repo.stars),
            license=license,
            pushed_at=repo.pushed_at,
        )

    def pin_commit(self, repo: RemoteRepo) -> str:
        params = {"per_page": 1}
        if repo.default_branch:
            params["ref_name"] = repo.default_branch
        if self.section.commits_until:
            params["until"] = self.section.commits_until
        path = f"projects/{repo.api_id}/repository/commits"
        commits = self.check(self.client.get(path, params), "commits").json()
        if not commits:
            raise RepoUnavailable("no-commit", f"no commit on {repo.default_branch} by {self.section.commits_until}")
        return commits[0]["id"]

    def archive(self, repo: RemoteRepo, commit: str) -> bytes:
        return self.download(f"projects/{repo.api_id}/repository/archive.tar.gz", {"sha": commit})
