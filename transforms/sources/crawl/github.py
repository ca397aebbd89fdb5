"""GitHub (REST API v3): public non-fork repositories by main language and license (paper §3.1).

Listing: repository search, one query per (language, license) with `fork:false` and a
`created:` range, followed page by page through the Link header. Search answers at most
1000 results per query, so a range whose total_count is larger is split in halves (down
to one second) until each part fits. Each item gives the repository's stars, license
license (its licensee `key`, mapped to an SPDX id: GitHub's own `spdx_id` says `GPL-3.0`
where SPDX says `GPL-3.0-only`), default branch and pushed_at. A page that says
`incomplete_results` (the search timed out on GitHub's side) is asked again, up to
INCOMPLETE_RETRIES times, before it is used as it is and noted in the manifest.

Fetching: the default branch is pinned to its last commit at or before `commits_until`
(or its head), and the tarball at that commit is downloaded; GitHub redirects it to
codeload, and the token is not sent there.
"""

from __future__ import annotations

import datetime

from transforms.sources.common import license_keys, spdx_of_key
from transforms.sources.crawl.hosts import Host, Listing, RemoteRepo, RepoUnavailable, StopListing
from transforms.sources.crawl.http_client import Reply
from transforms.sources.crawl.state import CrawlState

SEARCH_CAP = 1000  # results one search query can return
PER_PAGE = 100  # the most the search API gives per page
ONE_SECOND = datetime.timedelta(seconds=1)
INCOMPLETE_RETRIES = 3  # asks of a search page that came back with incomplete_results


def parse_time(value: str) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def format_time(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def repo_from_item(item: dict) -> dict | None:
    """A search result item as RemoteRepo fields (None for a fork)."""
    if item.get("fork"):
        return None
    license = item.get("license") or {}
    spdx = spdx_of_key(license.get("key")) or license.get("spdx_id")
    return dict(
        source="github",
        repo=item["full_name"],
        api_id=item["full_name"],
        default_branch=item.get("default_branch"),
        stars=item.get("stargazers_count"),
        license=spdx if spdx and spdx != "NOASSERTION" else None,
        pushed_at=item.get("pushed_at"),
    )


class GitHubHost(Host):
    source = "github"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    token_check = "rate_limit"  # free: it does not count against the token's limit
    requests_per_hour = 5000  # a token's REST budget (the listing's search has its own)

    def list_repositories(self, state: CrawlState) -> Listing:
        section = self.section
        listing = Listing(section.max_repositories)
        start, end = parse_time(section.created_from), parse_time(section.created_until)
        try:
            for language in section.languages:
                for key in license_keys(section.licenses, "sources.github.licenses"):
                    qualifiers = f'language:"{language}" license:{key} fork:false'
                    self._search(state, listing, qualifiers, start, end)
                    if listing.full:
                        return listing
        except StopListing:
            pass
        return listing

    def _search(self, state, listing: Listing, qualifiers: str, start, end) -> None:
        """List one created-range, splitting it while it holds more than the search cap."""
        if listing.full:
            return
        query = f"{qualifiers} created:{format_time(start)}..{format_time(end)}"
        first = self.page(state, listing, "search/repositories", {"q": query, "per_page": PER_PAGE})
        if first is None:
            return
        if first["total"] > SEARCH_CAP and end - start >= ONE_SECOND:
            middle = start + datetime.timedelta(seconds=(end - start).total_seconds() // 2)
            listing.facts["split_queries"] += 1
            self._search(state, listing, qualifiers, start, middle)
            self._search(state, listing, qualifiers, middle + ONE_SECOND, end)
            return
        if first["total"] > SEARCH_CAP:
            listing.notes["capped_queries"].append(query)
        if first["incomplete"]:
            listing.notes["incomplete_queries"].append(query)
        self.follow(state, listing, first)

    def page(self, state, listing: Listing, path: str, params: dict | None = None) -> dict | None:
        """A search page; one with incomplete_results is asked again (and not saved) before it is used."""
        for attempt in range(INCOMPLETE_RETRIES):
            answer = super().page(state, listing, path, params, save_if=lambda a: not a["incomplete"])
            if answer is None or not answer["incomplete"]:
                return answer
            listing.facts["incomplete_pages_retried"] += 1
            self.client.pause(attempt)
        return super().page(state, listing, path, params, save_if=lambda a: not a["incomplete"])

    def read_page(self, reply: Reply) -> dict:
        data = reply.json()
        items = data.get("items") or []
        repos = [r for r in map(repo_from_item, items) if r is not None]
        return {
            "repos": repos,
            "next": reply.links.get("next"),
            "total": int(data.get("total_count") or 0),
            "incomplete": bool(data.get("incomplete_results")),
        }

    def pin_commit(self, repo: RemoteRepo) -> str:
        params = {"per_page": 1}
        if repo.default_branch:
            params["sha"] = repo.default_branch
        if self.section.commits_until:
            params["until"] = self.section.commits_until
        commits = self.check(self.client.get(f"repos/{repo.api_id}/commits", params), "commits").json()
        if not commits:
            raise RepoUnavailable("no-commit", f"no commit on {repo.default_branch} by {self.section.commits_until}")
        return commits[0]["sha"]

    def archive(self, repo: RemoteRepo, commit: str) -> bytes:
        return self.download(f"repos/{repo.api_id}/tarball/{commit}")
