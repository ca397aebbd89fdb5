"""The `sources` section: where a run reads code from (local folders, GitHub, GitLab, BigQuery, datasets, dumps)."""

from __future__ import annotations

import dataclasses
import datetime
import re

from schemas.bounds import MAX_SHARDS, MAX_WAIT_SECONDS, check_at_most
from schemas.datasets_config import DatasetSource, check_secret_version
from schemas.errors import ConfigError

PERMISSIVE_LICENSES = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause")  # paper §3.1
# SPDX ids as the SPDX list spells them: those the license stage detects, those the APIs name,
# and common ones in published datasets. SPDX ids are case-insensitive; a config's are
# matched so and recorded in this spelling (an id not listed here is kept as written).
KNOWN_SPDX_IDS = (
    *PERMISSIVE_LICENSES,
    *("0BSD", "AGPL-3.0-only", "AGPL-3.0-or-later", "Artistic-2.0", "BSD-2-Clause-Patent", "BSL-1.0"),
    *("CC-BY-4.0", "CC0-1.0", "EPL-1.0", "EPL-2.0", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only"),
    *("GPL-3.0-or-later", "ISC", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later"),
    *("MIT-0", "MPL-2.0", "NOASSERTION", "PostgreSQL", "Python-2.0", "Unlicense", "WTFPL", "X11", "Zlib"),
)
_CANONICAL_SPDX = {spdx.lower(): spdx for spdx in KNOWN_SPDX_IDS}
SPDX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


def canonical_spdx_ids(ids: tuple[str, ...], key: str) -> tuple[str, ...]:
    """A list of SPDX ids in their canonical spelling, without repeats; an empty list or an expression is refused."""
    if not ids:
        raise ConfigError(f"{key} is empty, so every file would be rejected; list SPDX ids such as {list(PERMISSIVE_LICENSES)}")
    canonical = []
    for i, spdx in enumerate(ids):
        if not SPDX_ID.fullmatch(spdx):
            raise ConfigError(f"{key}[{i}]: {spdx!r} is not an SPDX id (one id per entry, such as MIT; no expressions)")
        spdx = _CANONICAL_SPDX.get(spdx.lower(), spdx)
        if spdx not in canonical:
            canonical.append(spdx)
    return tuple(canonical)


@dataclasses.dataclass(frozen=True)
class LocalSource:
    """A directory whose subdirectories are repositories (plain folders or git work trees)."""

    path: str
    metadata: str | None = None  # optional JSON file: {repo: {"stars": int, "origin": "github", "repo": "owner/name"}}


MAX_STARS = 2**63 - 1  # stars are stored as int64
METADATA_KEYS = ("repo", "stars", "origin")


def check_repo_metadata(data, path: str) -> dict[str, dict]:
    """A local source's metadata file, checked before any work; each error names the file and the key.

    `{folder: {"repo": "owner/name", "stars": 120, "origin": "github"}}`, every field optional;
    stars is a whole number from 0 to 2^63-1 (null: unknown).
    """
    if not isinstance(data, dict):
        shape = "{folder: {repo, stars, origin}}"
        raise ConfigError(f"{path}: the top level must be an object {shape}, got a {type(data).__name__}")
    checked = {}
    for folder, meta in data.items():
        where = f"{path}: [{folder!r}]"
        if not isinstance(meta, dict):
            raise ConfigError(f"{where} must be an object with {', '.join(METADATA_KEYS)}, got {meta!r}")
        unknown = sorted(set(meta) - set(METADATA_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {list(METADATA_KEYS)}")
        stars, repo, origin = meta.get("stars"), meta.get("repo", folder), meta.get("origin")
        if stars is not None and (type(stars) is not int or not 0 <= stars <= MAX_STARS):
            raise ConfigError(f"{where}.stars must be a whole number from 0 to 2^63-1 (or null), got {stars!r}")
        if not isinstance(repo, str) or not repo.strip():
            raise ConfigError(f"{where}.repo must be a non-empty string like owner/name, got {repo!r}")
        if origin is not None and not isinstance(origin, str):
            raise ConfigError(f"{where}.origin must be a string like github (or null), got {origin!r}")
        checked[folder] = {"repo": repo, "stars": stars, "origin": origin}
    return checked


PAPER_CRAWL_END = "2021-12-09T23:59:59Z"  # paper §3.1: the crawl ended on December 9th, 2021
PAPER_LANGUAGES = ("Python", "JavaScript", "Jupyter Notebook")  # §3.1: the repositories' main languages


def check_timestamp(value: str | None, key: str) -> None:
    """An ISO 8601 date or date-time (e.g. 2021-12-09 or 2021-12-09T23:59:59Z), or None."""
    if value is None:
        return
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an ISO 8601 date or date-time like 2021-12-09T23:59:59Z, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    """How an API crawl paces and retries its requests (5xx, timeouts, rate limits)."""

    timeout_seconds: float = 60.0  # connect and read timeout of one request
    max_retries: int = 6  # retries of one request; after that the repository is rejected (and retried next run)
    backoff_seconds: float = 2.0  # first backoff; doubles per retry, with seeded jitter
    max_backoff_seconds: float = 300.0  # cap of one backoff
    max_wait_seconds: float = 3900.0  # cap of one rate-limit wait (GitHub's limits reset hourly)
    request_budget: int | None = None  # most requests per client: the listing, and each fetch worker

    def __post_init__(self):
        if self.timeout_seconds <= 0 or self.backoff_seconds < 0 or self.max_backoff_seconds < self.backoff_seconds:
            raise ConfigError("timeout_seconds must be positive and 0 <= backoff_seconds <= max_backoff_seconds")
        if self.max_retries < 0 or self.max_wait_seconds < 0:
            raise ConfigError("max_retries and max_wait_seconds must not be negative")
        seconds = ("timeout_seconds", "backoff_seconds", "max_backoff_seconds", "max_wait_seconds")
        check_at_most(self, "", {name: MAX_WAIT_SECONDS for name in seconds})
        if self.request_budget is not None and self.request_budget < 1:
            raise ConfigError(f"request_budget must be at least 1 (or null for none), got {self.request_budget}")


@dataclasses.dataclass(frozen=True)
class RateSettings:
    """How a crawl's fetches use each token across the whole job (docs/sources.md, "Rate limits")."""

    requests_per_hour: int | None = None  # each token's budget for all fetches of the job; null: the API's documented
    # one (GitHub 5,000; GitLab none, so only its headers pace)
    concurrency: int = 4  # most requests at once per token across the whole job (threads of the token's one fetch task)
    service: str | None = None  # host:port of an Envoy rate-limit service holding one budget per token (across jobs)
    domain: str = "code-corpus"  # that service's rate-limit domain
    max_wait_seconds: float = 180.0  # longest a worker waits for the budget; longer: `rate-limited`, a rerun resumes

    def __post_init__(self):
        if self.requests_per_hour is not None and self.requests_per_hour < 1:
            raise ConfigError(f"requests_per_hour must be at least 1 (or null), got {self.requests_per_hour}")
        if self.concurrency < 1 or self.max_wait_seconds <= 0:
            raise ConfigError(
                f"concurrency must be at least 1 and max_wait_seconds positive, got {self.concurrency}, {self.max_wait_seconds}"
            )
        check_at_most(self, "", {"max_wait_seconds": MAX_WAIT_SECONDS})
        if self.service is not None and not re.fullmatch(r"[^\s:/]+:\d+", self.service):
            raise ConfigError(f"service must be host:port of an Envoy rate-limit service, got {self.service!r}")


@dataclasses.dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on one repository archive, read in memory (the per-file bound is read.max_file_bytes)."""

    max_archive_bytes: int = 500_000_000  # compressed download; larger archives are rejected unread
    max_uncompressed_bytes: int = 4_000_000_000  # decompression-bomb guard: reading stops here
    max_members: int = 200_000  # entries of one archive; the rest is rejected

    def __post_init__(self):
        for name in ("max_archive_bytes", "max_uncompressed_bytes", "max_members"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class ApiSource:
    """What the GitHub and GitLab crawls share (paper §3.1: public, non-fork, permissive)."""

    base_url: str = ""
    token_env: str | None = None  # environment variable holding the API token; never logged
    # Secret Manager version holding the token (projects/P/secrets/S/versions/V), read by each worker in
    # setup: what a Dataflow crawl needs, since workers do not see the launcher's environment. Wins over token_env.
    token_secret: str | None = None
    secret_api_endpoint: str | None = None  # null: the real Secret Manager; or a local emulator's URL (no credentials)
    # More tokens, each an environment variable's name or a Secret Manager version: each has its own budget and
    # fetches its share of the repositories (`rate` holds per token), so a crawl scales by tokens, not workers.
    extra_tokens: tuple[str, ...] = ()
    languages: tuple[str, ...] = PAPER_LANGUAGES  # the repository's main language must be one of these
    licenses: tuple[str, ...] = PERMISSIVE_LICENSES  # SPDX ids
    commits_until: str | None = PAPER_CRAWL_END  # pin each repository to its last commit by then; null: head
    max_repositories: int | None = None  # stop listing after this many
    state_dir: str | None = None  # crawl state (resume); default: <out>/<name>/crawl/
    http: HttpSettings = HttpSettings()
    rate: RateSettings = RateSettings()
    limits: ArchiveLimits = ArchiveLimits()

    def __post_init__(self):
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.languages or not self.licenses:
            raise ConfigError("languages and licenses must not be empty")
        object.__setattr__(self, "licenses", canonical_spdx_ids(self.licenses, "licenses"))
        if self.max_repositories is not None and self.max_repositories < 1:
            raise ConfigError(f"max_repositories must be at least 1 (or null for all), got {self.max_repositories}")
        check_timestamp(self.commits_until, "commits_until")
        check_secret_version(self.token_secret, "token_secret")


@dataclasses.dataclass(frozen=True)
class GitHubSource(ApiSource):
    """GitHub REST v3: repository search split by creation date, tarballs at pinned commits."""

    base_url: str = "https://api.github.com"
    token_env: str | None = "GITHUB_TOKEN"
    created_from: str = "2008-01-01T00:00:00Z"  # search repositories created in this range
    created_until: str = PAPER_CRAWL_END

    def __post_init__(self):
        super().__post_init__()
        check_timestamp(self.created_from, "created_from")
        check_timestamp(self.created_until, "created_until")


@dataclasses.dataclass(frozen=True)
class GitLabSource(ApiSource):
    """GitLab REST v4: public projects by language, license from the project endpoint."""

    base_url: str = "https://gitlab.com/api/v4"
    token_env: str | None = "GITLAB_TOKEN"
    # The snapshot date: projects created by then are listed (whatever their activity since).
    created_until: str | None = PAPER_CRAWL_END
    # Optional activity filters (last_activity_after/before); active_until keeps only projects inactive since.
    active_from: str | None = None
    active_until: str | None = None

    def __post_init__(self):
        super().__post_init__()
        check_timestamp(self.created_until, "created_until")
        check_timestamp(self.active_from, "active_from")
        check_timestamp(self.active_until, "active_until")


# The cap a BigQuery run starts with: 100 GB, well below the paper-scale query (about 2.7 TB,
# docs/sources.md), so that query fails before it bills anything until the cap is raised on purpose.
DEFAULT_MAXIMUM_BYTES_BILLED = 100 * 10**9


@dataclasses.dataclass(frozen=True)
class BigQuerySource:
    """The GitHub archive on BigQuery: Python and Jupyter files the API crawl did not get (§3.1, fn. 5)."""

    project: str | None = None  # project billed for the query and holding results_dataset; null: the default project
    dataset: str = "bigquery-public-data.github_repos"  # tables licenses, files, contents
    licenses: tuple[str, ...] = PERMISSIVE_LICENSES  # SPDX ids
    extensions: tuple[str, ...] = (".py", ".ipynb")
    exclude_crawled: bool = True  # leave out repositories the GitHub crawl lists
    location: str | None = "US"  # where the jobs run and results_dataset lives (the public dataset is in US)
    maximum_bytes_billed: int = DEFAULT_MAXIMUM_BYTES_BILLED  # the query fails, unbilled, rather than bill more
    results_dataset: str = "code_corpus_staging"  # dataset in `project` for the result and exclusion tables
    results_expiration_hours: int = 24  # those tables expire after this long
    read_streams: int = 200  # most Storage Read API streams the result is read in (one task each)
    api_endpoint: str | None = None  # null: the real API; or e.g. a local emulator's URL
    storage_api_endpoint: str | None = None  # null: the real Storage Read API; or host:port of a plain-gRPC emulator
    anonymous: bool = False  # no credentials (local emulators only)

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_]+", self.dataset):
            raise ConfigError(f"dataset must look like project.dataset, got {self.dataset!r}")
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.results_dataset):
            raise ConfigError(f"results_dataset must be a dataset name (letters, digits, _), got {self.results_dataset!r}")
        if not self.licenses or not self.extensions:
            raise ConfigError("licenses and extensions must not be empty")
        object.__setattr__(self, "licenses", canonical_spdx_ids(self.licenses, "licenses"))
        if self.read_streams < 1 or self.results_expiration_hours < 1:
            raise ConfigError("read_streams and results_expiration_hours must be at least 1")
        check_at_most(self, "", {"read_streams": MAX_SHARDS})
        if not isinstance(self.maximum_bytes_billed, int) or self.maximum_bytes_billed < 1:
            raise ConfigError(
                f"maximum_bytes_billed must be a number of bytes (no query runs uncapped), got {self.maximum_bytes_billed!r}"
            )
        if self.anonymous and not self.project:
            raise ConfigError("anonymous: true needs a project (there are no credentials to take it from)")


@dataclasses.dataclass(frozen=True)
class SourcesConfig:
    local: tuple[LocalSource, ...] = ()
    # Stack Exchange dumps: a folder holding Posts.xml and Comments.xml (or <site>-Posts.7z and
    # <site>-Comments.7z), or a site's .7z archive holding both; the site name is the path's base name.
    stackoverflow: tuple[str, ...] = ()
    github: GitHubSource | None = None  # network sources; see docs/sources.md
    gitlab: GitLabSource | None = None
    bigquery: BigQuerySource | None = None
    datasets: tuple[DatasetSource, ...] = ()  # published datasets of files (The Stack, Parquet, JSON Lines)

    def __post_init__(self):
        names = [d.name for d in self.datasets]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(f"datasets[{i}].name: {name!r} is already datasets[{names.index(name)}].name")
