"""The run configuration: frozen dataclasses filled from a YAML file.

Every section is a dataclass whose defaults follow the InCoder paper (the section is
cited beside each default). `load_config` rejects unknown keys and wrong types at
once, naming the key path and what it expected, so a typo never runs silently.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
import types
import typing
from typing import Any

import yaml

STAGES = ("corpus", "tokenizer", "binarize", "train")

PERMISSIVE_LICENSES = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause")  # paper §3.1


# Beam finds files by glob patterns it cannot escape, so paths must not hold these.
GLOB_CHARACTERS = frozenset("*?[]{}")


class ConfigError(ValueError):
    """A configuration problem, phrased as what to change."""


@dataclasses.dataclass(frozen=True)
class LocalSource:
    """A directory whose subdirectories are repositories (plain folders or git work trees)."""

    path: str
    metadata: str | None = None  # optional JSON file: {repo: {"stars": int, "origin": "github", "repo": "owner/name"}}


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
        if self.request_budget is not None and self.request_budget < 1:
            raise ConfigError(f"request_budget must be at least 1 (or null for none), got {self.request_budget}")


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
    languages: tuple[str, ...] = PAPER_LANGUAGES  # the repository's main language must be one of these
    licenses: tuple[str, ...] = PERMISSIVE_LICENSES  # SPDX ids
    commits_until: str | None = PAPER_CRAWL_END  # pin each repository to its last commit by then; null: head
    max_repositories: int | None = None  # stop listing after this many
    state_dir: str | None = None  # crawl state (resume); default: <out>/<name>/crawl/
    http: HttpSettings = HttpSettings()
    limits: ArchiveLimits = ArchiveLimits()

    def __post_init__(self):
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.languages or not self.licenses:
            raise ConfigError("languages and licenses must not be empty")
        if self.max_repositories is not None and self.max_repositories < 1:
            raise ConfigError(f"max_repositories must be at least 1 (or null for all), got {self.max_repositories}")
        check_timestamp(self.commits_until, "commits_until")


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
    active_from: str | None = None  # projects with activity in this range (last_activity_after/before)
    active_until: str | None = PAPER_CRAWL_END

    def __post_init__(self):
        super().__post_init__()
        check_timestamp(self.active_from, "active_from")
        check_timestamp(self.active_until, "active_until")


@dataclasses.dataclass(frozen=True)
class BigQuerySource:
    """The GitHub archive on BigQuery: Python and Jupyter files the API crawl did not get (§3.1, fn. 5)."""

    project: str | None = None  # project billed for the query; null: the environment's default project
    dataset: str = "bigquery-public-data.github_repos"  # tables licenses, files, contents
    licenses: tuple[str, ...] = PERMISSIVE_LICENSES  # SPDX ids
    extensions: tuple[str, ...] = (".py", ".ipynb")
    exclude_crawled: bool = True  # leave out repositories the GitHub crawl lists
    location: str | None = "US"  # where the query job runs (the public dataset is in US)
    api_endpoint: str | None = None  # null: the real API; or e.g. a local emulator's URL
    anonymous: bool = False  # no credentials (local emulators only)
    rows_per_read: int = 50_000  # results are read in parallel ranges of this many rows
    page_size: int = 500  # rows per results page
    maximum_bytes_billed: int | None = None  # the query fails rather than bill more

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_]+", self.dataset):
            raise ConfigError(f"dataset must look like project.dataset, got {self.dataset!r}")
        if not self.licenses or not self.extensions:
            raise ConfigError("licenses and extensions must not be empty")
        if self.rows_per_read < 1 or self.page_size < 1:
            raise ConfigError("rows_per_read and page_size must be at least 1")
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


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    max_file_bytes: int = 1_000_000  # larger files are rejected as too-large before they are read

    def __post_init__(self):
        if self.max_file_bytes <= 0:
            raise ConfigError(f"read.max_file_bytes must be positive, got {self.max_file_bytes}")


@dataclasses.dataclass(frozen=True)
class LicenseConfig:
    allow: tuple[str, ...] = PERMISSIVE_LICENSES  # paper §3.1: MIT, Apache 2.0, BSD-2, BSD-3


@dataclasses.dataclass(frozen=True)
class StackOverflowConfig:
    """Selection and read limits for StackOverflow dumps (paper §3.2)."""

    max_answers: int = 10  # answers per question, the highest-scored first (§3.2: up to ten)
    min_answer_score: int = 0  # answers scored below this are left out (§3.2: non-negative)
    max_comments: int = 5  # comments per question and per answer, the earliest first (§3.2: up to five)
    range_bytes: int = 64 * 2**20  # plain XML files are read in byte ranges of this size, in parallel
    max_row_bytes: int = 16 * 2**20  # a longer row is rejected (too-large) unparsed, so memory stays bounded

    def __post_init__(self):
        for name, least in (("max_answers", 1), ("max_comments", 0), ("range_bytes", 1), ("max_row_bytes", 1024)):
            if getattr(self, name) < least:
                raise ConfigError(f"stackoverflow.{name} must be at least {least}, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class LanguageConfig:
    languages: tuple[str, ...] = ()  # empty: all 28 languages of paper footnote 4; or a subset of them


@dataclasses.dataclass(frozen=True)
class DecontaminationConfig:
    humaneval: bool = True  # paper footnote 8: drop files holding a HumanEval prompt or solution
    min_match_chars: int = 40  # shorter HumanEval texts (whitespace removed) are not searched for
    denied_repos: str | None = None  # file of owner/name lines (paper: CodeSearchNet valid/test repositories)

    def __post_init__(self):
        if self.min_match_chars < 8:
            raise ConfigError(f"decontamination.min_match_chars must be at least 8, got {self.min_match_chars}")


@dataclasses.dataclass(frozen=True)
class FiltersConfig:
    max_line_tokens: int = 3000  # paper §3.1: no line longer than 3000 tokens
    max_avg_line_tokens: float = 100.0  # paper §3.1: average line length at most 100 tokens
    min_alnum_fraction: float = 0.4  # paper §3.1: at least 40% alphanumeric or underscore characters
    extra_generated_phrases: tuple[str, ...] = ()  # added to the built-in generator phrases (footnote 9)

    def __post_init__(self):
        if self.max_line_tokens < 1 or self.max_avg_line_tokens <= 0:
            raise ConfigError("filters.max_line_tokens and filters.max_avg_line_tokens must be positive")
        if not 0.0 <= self.min_alnum_fraction <= 1.0:
            raise ConfigError(f"filters.min_alnum_fraction must be within [0, 1], got {self.min_alnum_fraction}")
        if any(not p for p in self.extra_generated_phrases):
            raise ConfigError("filters.extra_generated_phrases must not contain empty phrases")


@dataclasses.dataclass(frozen=True)
class DedupConfig:
    bloom_capacity: int = 1_000_000  # distinct keys the version's Bloom filter holds at bloom_error_rate
    bloom_error_rate: float = 0.001  # false-positive rate of the Bloom filter at capacity
    previous_versions: tuple[str, ...] = ()  # version directories whose dedup/bloom.bin excludes files

    def __post_init__(self):
        if self.bloom_capacity < 1:
            raise ConfigError(f"dedup.bloom_capacity must be at least 1, got {self.bloom_capacity}")
        if not 0.0 < self.bloom_error_rate < 1.0:
            raise ConfigError(f"dedup.bloom_error_rate must be within (0, 1), got {self.bloom_error_rate}")


@dataclasses.dataclass(frozen=True)
class ScrubConfig:
    replacement: str = "removed@example.com"  # paper footnote 7


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    document_shards: int = 4  # Parquet files under documents/; each is sorted by id
    rejected_shards: int = 1

    def __post_init__(self):
        for name in ("document_shards", "rejected_shards"):
            if getattr(self, name) < 1:
                raise ConfigError(f"output.{name} must be at least 1, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class FormatConfig:
    """The format stage (paper §3.3). By default the dstars buckets are computed over the run."""

    # Five non-decreasing star counts: the upper bounds of dstars buckets 0-4 (bucket 5 is above).
    star_boundaries: tuple[float, ...] | None = None
    # Or an earlier version directory whose manifest's `star_buckets` has them.
    star_boundaries_from: str | None = None

    def __post_init__(self):
        if self.star_boundaries is not None and self.star_boundaries_from is not None:
            raise ConfigError("format: set star_boundaries or star_boundaries_from, not both")
        if self.star_boundaries is not None:
            check_star_boundaries(self.star_boundaries, "format.star_boundaries")


def check_star_boundaries(values, key: str) -> None:
    """Six buckets need five upper bounds, in non-decreasing order."""
    if len(values) != 5 or any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
        raise ConfigError(f"{key} must be a list of 5 numbers (six star buckets), got {list(values)!r}")
    if any(a > b for a, b in zip(values, values[1:])):
        raise ConfigError(f"{key} must be non-decreasing, got {list(values)!r}")


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """The tokenizer stage: byte-level BPE over a deterministic sample of the documents (paper §3.4)."""

    vocab_size: int = 50_000  # learned tokens (bytes included); the 259 special tokens come on top
    min_frequency: int = 2  # a pair must occur this often to be merged
    sample_documents: int = 100_000  # train on at most this many documents (lowest hash of seed + id)
    # and at most this much text: BPE training takes roughly 80 times the sample's size in memory
    sample_bytes: int = 100_000_000
    sample_fraction: float = 1.0  # and only on documents whose hash falls below this fraction
    # An earlier version directory (or tokenizer directory) whose tokenizer is copied instead of
    # training one, so the new version's shards share its token ids.
    reuse_from: str | None = None

    def __post_init__(self):
        if self.vocab_size < 256:
            raise ConfigError(f"tokenizer.vocab_size must be at least 256 (the byte alphabet), got {self.vocab_size}")
        if self.min_frequency < 1:
            raise ConfigError(f"tokenizer.min_frequency must be at least 1, got {self.min_frequency}")
        for name in ("sample_documents", "sample_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"tokenizer.{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 < self.sample_fraction <= 1.0:
            raise ConfigError(f"tokenizer.sample_fraction must be in (0, 1], got {self.sample_fraction}")


@dataclasses.dataclass(frozen=True)
class BinarizeConfig:
    """The binarize stage: documents → Megatron .bin/.idx token shards, split by document id."""

    num_shards: int = 8  # train-NNNNN shards
    valid_shards: int = 1  # valid-NNNNN shards
    valid_fraction: float = 0.01  # share of documents (by hash of seed + id) held out for validation

    def __post_init__(self):
        for name in ("num_shards", "valid_shards"):
            if getattr(self, name) < 1:
                raise ConfigError(f"binarize.{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"binarize.valid_fraction must be in [0, 1), got {self.valid_fraction}")


MODEL_PRESETS = ("tiny", "125m", "1.3b", "6.7b")  # trainer/model.py's shapes; 1.3b and 6.7b are Table 8's


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The train stage: a causal-masking model on the version's shards (paper §2, §4).

    Defaults train the tiny preset on a laptop CPU in about a minute; the paper's run
    used context_length 2048, batch 8 per GPU and 1500 warm-up updates.
    """

    preset: str = "tiny"  # model shape: tiny | 125m | 1.3b | 6.7b
    steps: int = 300  # optimizer updates
    batch_size: int = 8  # sequences per update (§4: 8 per GPU)
    context_length: int = 128  # tokens per sequence (§4: 2048)
    lr: float = 1e-3  # peak learning rate, reached after the warm-up
    lr_end: float = 0.0  # rate at the last step (linear polynomial decay, fairseq's default power 1)
    warmup_steps: int = 30  # linear warm-up updates (§4: 1500)
    weight_decay: float = 0.0  # decoupled (AdamW); Adam betas are §4's (0.9, 0.98), gradients clipped at 1.0
    dropout: float | None = None  # None: the preset's (0.1, tiny 0.0)
    seed: int = 0  # model initialisation, data order and masking
    checkpoint_every: int = 100  # updates between checkpoints; the last step always gets one
    keep_checkpoints: int = 2  # newest checkpoints kept under checkpoints/
    eval_batches: int = 4  # validation batches scored at each checkpoint (0: none)
    log_every: int = 10  # updates between progress lines (loss, tokens/s, MFU on GPU)
    device: str = "auto"  # auto (cuda when available) | cpu | cuda; cuda trains under bf16 autocast
    gpu_peak_tflops: float | None = None  # bf16 peak for MFU on a GPU trainer/model.py does not know

    def __post_init__(self):
        if self.preset not in MODEL_PRESETS:
            raise ConfigError(f"train.preset must be one of {list(MODEL_PRESETS)}, got {self.preset!r}")
        for name in ("steps", "batch_size", "checkpoint_every", "keep_checkpoints", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.context_length < 32:
            raise ConfigError(f"train.context_length must be at least 32 (room for spans), got {self.context_length}")
        if self.lr <= 0 or self.lr_end < 0 or self.lr_end > self.lr:
            raise ConfigError(f"train.lr must be positive and train.lr_end in [0, lr], got {self.lr} and {self.lr_end}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ConfigError(f"train.warmup_steps must be in [0, steps={self.steps}], got {self.warmup_steps}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"train.dropout must be in [0, 1), got {self.dropout}")
        if self.weight_decay < 0 or self.eval_batches < 0:
            raise ConfigError("train.weight_decay and train.eval_batches must not be negative")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device must be auto, cpu or cuda, got {self.device!r}")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    name: str
    seed: int = 0  # mixed into every per-record random choice
    stages: tuple[str, ...] = ("corpus",)
    sources: SourcesConfig = SourcesConfig()
    read: ReadConfig = ReadConfig()
    license: LicenseConfig = LicenseConfig()
    language: LanguageConfig = LanguageConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig()
    filters: FiltersConfig = FiltersConfig()
    dedup: DedupConfig = DedupConfig()
    scrub: ScrubConfig = ScrubConfig()
    output: OutputConfig = OutputConfig()
    stackoverflow: StackOverflowConfig = StackOverflowConfig()
    format: FormatConfig = FormatConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    binarize: BinarizeConfig = BinarizeConfig()
    train: TrainConfig = TrainConfig()
    # Directory that relative paths in this config are resolved against (not part of the config hash).
    base_dir: str = dataclasses.field(default=".", metadata={"internal": True})

    def __post_init__(self):
        if not self.name or "/" in self.name or self.name.startswith(".") or GLOB_CHARACTERS & set(self.name):
            raise ConfigError(f"name must be a plain directory name (no /, no leading ., no *?[]{{}}), got {self.name!r}")
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")

    def resolve(self, path: str) -> str:
        """A path from the config, made absolute against the config file's directory."""
        if "://" in path or os.path.isabs(path):
            return path
        return os.path.normpath(os.path.join(self.base_dir, path))

    def to_dict(self) -> dict:
        return _to_plain(self)

    def hash(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def replace(self, **changes: Any) -> "PipelineConfig":
        return dataclasses.replace(self, **changes)


def load_config(path: str, overrides: dict | None = None) -> PipelineConfig:
    """Read a YAML config file; relative paths in it are relative to the file."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    data = dict(data, **(overrides or {}))
    data["base_dir"] = os.path.dirname(os.path.abspath(path))
    return from_mapping(PipelineConfig, data, path)


def from_mapping(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from plain data, checking keys and types recursively."""
    if dataclasses.is_dataclass(data) and isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        values[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    missing = [
        n
        for n, f in fields.items()
        if n not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    try:
        return cls(**values)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0]
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{where}: unsupported config type {hint}")


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {
            f.name: _to_plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.metadata.get("internal")
        }
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value
