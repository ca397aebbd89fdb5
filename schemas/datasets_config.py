"""The `sources.datasets` entries: published code datasets (The Stack, any Parquet or JSON Lines of files).

Each entry names where its files are (`paths`: local or gs:// files and globs; or `hub`: a
Hugging Face Hub dataset) and which column holds each `RepoFile` field, from a preset
(`the-stack-v1`, `the-stack-v2`) and/or an explicit `columns` mapping.
"""

from __future__ import annotations

import dataclasses
import re

from schemas.bounds import MAX_BATCH_ROWS, MAX_READ_BYTES, check_at_most
from schemas.errors import ConfigError

FORMATS = ("parquet", "jsonl")
FIELDS = ("content", "path", "repo", "stars", "license", "revision", "id")  # what a column can feed
REQUIRED_FIELDS = ("content", "path")  # a row without these is no file


@dataclasses.dataclass(frozen=True)
class DatasetColumns:
    """The column holding each RepoFile field; null: the data has none (repo: the dataset's name)."""

    content: str | None = None  # the file's text
    path: str | None = None  # its path in the repository (the language and format stages read its extension)
    repo: str | None = None  # owner/name
    stars: str | None = None  # an integer; feeds the dstars buckets
    license: str | None = None  # an SPDX id or expression, or a list of SPDX ids (all must be allowed)
    revision: str | None = None  # the commit the file was taken at
    id: str | None = None  # the row's own identity (The Stack's hexsha); a row without it is rejected

    def mapped(self) -> dict[str, str]:
        """{field: column} of the fields that have a column."""
        return {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not None}


# The Stack v1 (bigcode/the-stack, -dedup): one row per file, its repository the one with most stars.
THE_STACK_V1 = DatasetColumns(
    content="content",
    path="max_stars_repo_path",
    repo="max_stars_repo_name",
    stars="max_stars_count",
    license="max_stars_repo_licenses",
    revision="max_stars_repo_head_hexsha",
    id="hexsha",
)
# The Stack v2 file-level schema (bigcode/the-stack-v2, -dedup). Its published files hold the
# metadata only; `content` is the column the dataset card's download snippet adds from
# Software Heritage's bucket by blob_id (docs/sources.md).
THE_STACK_V2 = DatasetColumns(
    content="content",
    path="path",
    repo="repo_name",
    stars="star_events_count",
    license="detected_licenses",
    revision="revision_id",
    id="blob_id",
)
PRESETS = {"the-stack-v1": THE_STACK_V1, "the-stack-v2": THE_STACK_V2}
PRESET_ORIGIN = "github"  # both versions of The Stack were collected from GitHub


SECRET_VERSION = re.compile(r"projects/[^/]+/secrets/[^/]+/versions/[^/]+")


def check_secret_version(value: str | None, key: str) -> None:
    """A Secret Manager version name, or null."""
    if value is not None and not SECRET_VERSION.fullmatch(value):
        raise ConfigError(f"{key} must name a secret version like projects/PROJECT/secrets/NAME/versions/latest, got {value!r}")


@dataclasses.dataclass(frozen=True)
class HubDataset:
    """A dataset on the Hugging Face Hub, its files chosen as the Hub's dataset configs choose them
    (`transforms/sources/datasets/hub.py`).

    Only the listing differs from local files; the endpoint is huggingface_hub's own setting
    (HF_ENDPOINT), and so is the token (HF_TOKEN, or `hf auth login`) unless `token_secret` names one.
    """

    repo_id: str  # e.g. bigcode/the-stack-dedup
    data_dir: str = ""  # folder in the repository, e.g. data/python (The Stack's languages are such folders)
    revision: str = "main"  # branch, tag or commit; resolved to a commit id once, recorded in the manifest
    split: str = "train"  # the split's files (by the README's data_files, or the Hub's naming rules); "" for every file
    config: str | None = None  # a config_name of the README's `configs`; null: its default (or only) one
    # Secret Manager version holding a Hub token (projects/P/secrets/S/versions/V), read by the launcher and
    # each worker: what a gated dataset needs on Dataflow, whose workers do not see HF_TOKEN. Wins over HF_TOKEN.
    token_secret: str | None = None
    secret_api_endpoint: str | None = None  # null: the real Secret Manager; or a local emulator's URL (no credentials)

    def __post_init__(self):
        check_secret_version(self.token_secret, "token_secret")
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", self.repo_id):
            raise ConfigError(f"repo_id must look like owner/name, got {self.repo_id!r}")
        if ".." in self.data_dir.split("/") or self.data_dir.startswith("/"):
            raise ConfigError(f"data_dir must be a folder inside the repository, got {self.data_dir!r}")


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """One published dataset of code files, read as `RepoFile`s of source `dataset`."""

    name: str  # names the dataset in ids, the manifest and rejections; the repo of rows without one
    paths: tuple[str, ...] = ()  # local or gs:// .parquet / .jsonl / .jsonl.gz / .jsonl.zst files or globs
    hub: HubDataset | None = None  # or a Hugging Face Hub dataset
    preset: str | None = None  # the-stack-v1 | the-stack-v2
    columns: DatasetColumns = DatasetColumns()  # each column set here replaces the preset's
    format: str | None = None  # parquet | jsonl; null: by each file's extension
    origin: str | None = None  # where the repositories were hosted (github, gitlab); null: the preset's, or none
    range_bytes: int = 64 * 2**20  # plain JSON Lines files are read in byte ranges of this size, in parallel
    max_row_bytes: int = 16 * 2**20  # a longer JSON line is rejected (too-large) unparsed
    batch_rows: int = 1024  # Parquet rows decoded at a time

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", self.name):
            raise ConfigError(f"name must be letters, digits, '.', '_' or '-', got {self.name!r}")
        if bool(self.paths) == (self.hub is not None):
            raise ConfigError("give paths (local or gs:// files) or hub (a Hugging Face dataset), one of the two")
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"format must be one of {list(FORMATS)} or null, got {self.format!r}")
        missing = [f for f in REQUIRED_FIELDS if f not in self.mapping()]
        if missing:
            keys = ", ".join(f"columns.{f}" for f in missing)
            raise ConfigError(f"{keys}: no column for {missing}; set a preset ({sorted(PRESETS)}) or name the column")
        for name, least in (("range_bytes", 1), ("max_row_bytes", 1024), ("batch_rows", 1)):
            if getattr(self, name) < least:
                raise ConfigError(f"{name} must be at least {least}, got {getattr(self, name)}")
        check_at_most(self, "", {"max_row_bytes": MAX_READ_BYTES, "batch_rows": MAX_BATCH_ROWS})

    def mapping(self) -> dict[str, str]:
        """{field: column}: the preset's, with the explicit `columns` on top."""
        preset = PRESETS[self.preset].mapped() if self.preset else {}
        return {**preset, **self.columns.mapped()}

    def host(self) -> str | None:
        return self.origin if self.origin is not None else PRESET_ORIGIN if self.preset else None
