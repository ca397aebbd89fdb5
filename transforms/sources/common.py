"""What every network source shares: license keys, checks of API answers, the outputs shape.

GitHub, GitLab and BigQuery name licenses by licensee's keys; the config and the records
use SPDX ids. Answers are checked field by field before they become records, so a reply of
the wrong shape is a `malformed-reply` rejection, never a crash.
"""

from __future__ import annotations

import hashlib
import logging
import typing

import apache_beam as beam

from schemas.config import ConfigError
from schemas.records import RepoSnapshot
from transforms.sources.crawl.http_client import MalformedReply

log = logging.getLogger(__name__)

# License keys as GitHub, GitLab and BigQuery's `licenses` table spell them (licensee's) → SPDX ids.
LICENSE_KEYS = {
    "mit": "MIT",
    "apache-2.0": "Apache-2.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "isc": "ISC",
    "unlicense": "Unlicense",
    "mpl-2.0": "MPL-2.0",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-3.0": "LGPL-3.0-only",
    "gpl-2.0": "GPL-2.0-only",
    "gpl-3.0": "GPL-3.0-only",
    "agpl-3.0": "AGPL-3.0-only",
}
SPDX_KEYS = {spdx: key for key, spdx in LICENSE_KEYS.items()}

# What reading an answer of an unexpected shape raises (MalformedReply is a ValueError too):
# a list where a dict was expected, a missing field, a number that is not one.
MALFORMED = (MalformedReply, AttributeError, IndexError, KeyError, TypeError, ValueError)
OPTIONAL_STR, OPTIONAL_INT = (str, type(None)), (int, type(None))
REPO_FIELDS = {
    "repo": str,
    "api_id": str,
    "default_branch": OPTIONAL_STR,
    "stars": OPTIONAL_INT,
    "license": OPTIONAL_STR,
    "pushed_at": OPTIONAL_STR,
}
OPTIONAL_REPO_FIELDS = {"created_at": OPTIONAL_STR}
COMMIT_CHARS = frozenset("0123456789abcdef")

# Final statuses that say something about the repository itself.
STATUS_REASONS = {403: "forbidden", 404: "vanished", 409: "empty-repository", 410: "vanished", 451: "unavailable-legal"}


def malformed(e: Exception) -> str:
    """The detail of a malformed answer (bounded: an error can quote the answer)."""
    text = str(e) if isinstance(e, MalformedReply) else f"{type(e).__name__}: {e}"
    return f"malformed reply: {text}"[:300]


def check_repo(data: dict) -> dict:
    """RemoteRepo fields of the types the records need; TypeError for an answer that gave others."""
    for name, kind in REPO_FIELDS.items():
        if not isinstance(data[name], kind) or (kind is str and not data[name]):
            raise TypeError(f"{name} is {type(data[name]).__name__} {repr(data[name])[:60]}")
    for name, kind in OPTIONAL_REPO_FIELDS.items():
        if not isinstance(data.get(name), kind):
            raise TypeError(f"{name} is {type(data[name]).__name__} {repr(data[name])[:60]}")
    return data


def check_commit(commit) -> str:
    """A commit id as the APIs give it (40 or 64 lowercase hex digits); it goes into URLs and records."""
    if not isinstance(commit, str) or len(commit) not in (40, 64) or not COMMIT_CHARS.issuperset(commit):
        raise MalformedReply(f"commit id {repr(commit)[:80]} is not a hex object name")
    return commit


def spdx_of_key(key: str | None) -> str | None:
    return LICENSE_KEYS.get((key or "").lower())


def license_keys(licenses: tuple[str, ...], where: str) -> list[str]:
    """The API license keys of SPDX ids from the config; an unknown id fails at once."""
    unknown = [s for s in licenses if s not in SPDX_KEYS]
    if unknown:
        raise ConfigError(f"{where}: no API license key for {unknown}; use SPDX ids among {sorted(SPDX_KEYS)}")
    return [SPDX_KEYS[s] for s in licenses]


class SourceOutputs(typing.NamedTuple):
    """What a network source adds to the graph (flow.add_stage reads kept/rejected/tally)."""

    kept: beam.PCollection
    rejected: beam.PCollection
    tally: beam.PCollection
    snapshot: beam.PCollection
    summary: beam.PCollection  # one dict: the source's manifest entry


class SnapshotIdFn(beam.CombineFn):
    """An order-free digest of (repository, revision) pairs: the sum of their SHA-256s mod 2**256."""

    def create_accumulator(self):
        return 0

    def add_input(self, total, snapshot: RepoSnapshot):
        digest = hashlib.sha256(f"{snapshot.source}\0{snapshot.repo}\0{snapshot.revision}".encode()).hexdigest()
        return (total + int(digest, 16)) % 2**256

    def merge_accumulators(self, totals):
        return sum(totals) % 2**256

    def extract_output(self, total):
        return f"{total:064x}"


class CountFilesPerRepo(beam.PTransform):
    """Kept files of a source whose records carry the repository facts → one RepoSnapshot per
    (source, repository, revision, license, stars)."""

    def expand(self, files):
        return (
            files
            | "KeyByRepo" >> beam.Map(lambda f: ((f.source, f.repo, f.revision, f.license, f.stars), 1))
            | "CountFiles" >> beam.CombinePerKey(sum)
            | "ToSnapshot" >> beam.MapTuple(lambda key, n: RepoSnapshot(*key, n))
        )


def with_snapshot_id(pbegin, summary: dict, snapshots: beam.PCollection) -> beam.PCollection:
    """The source's manifest entry: `summary` plus the snapshot id of what it read."""
    snapshot_id = snapshots | "SnapshotId" >> beam.CombineGlobally(SnapshotIdFn())
    return (
        pbegin
        | "Summary" >> beam.Create([summary])
        | "AddSnapshotId" >> beam.Map(lambda s, sid: {**s, "snapshot_id": sid}, beam.pvalue.AsSingleton(snapshot_id))
    )
