"""The run configuration: frozen dataclasses filled from a YAML file.

Every section is a dataclass whose defaults follow the InCoder paper (the section is
cited beside each default). `load_config` rejects unknown keys and wrong types at
once, naming the key path and what it expected, so a typo never runs silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from schemas import stage_names
from schemas.bounds import MAX_PERMUTATIONS, MAX_READ_BYTES, MAX_SHARDS, MAX_WAIT_SECONDS, check_at_most
from schemas.errors import ConfigError
from schemas.records import MAX_EXCERPT_BYTES
from schemas.sources_config import PERMISSIVE_LICENSES, SourcesConfig, canonical_spdx_ids
from schemas.typed_yaml import from_mapping, to_plain
from schemas.yaml_file import load_yaml_file

STAGES = stage_names.RUN_STAGES


# Beam finds files by glob patterns it cannot escape, so paths must not hold these.
GLOB_CHARACTERS = frozenset("*?[]{}")


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    """Raw-size guards of the sources. Not from the paper: they bound a worker's memory per file."""

    max_file_bytes: int = 1_000_000  # larger files are rejected as too-large before they are read
    # A notebook's JSON carries its outputs (images as base64), which the notebooks stage drops
    # before the filters judge its text, so notebooks get more room.
    max_notebook_bytes: int = 20_000_000
    # The longest one git call of the local source may take (listing a repository, or handing
    # over one file); a git that hangs past it is killed and its repository's files rejected.
    git_timeout_seconds: float = 600.0

    def __post_init__(self):
        for name in ("max_file_bytes", "max_notebook_bytes", "git_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"read.{name} must be positive, got {getattr(self, name)}")
        bounds = {"max_file_bytes": MAX_READ_BYTES, "max_notebook_bytes": MAX_READ_BYTES, "git_timeout_seconds": MAX_WAIT_SECONDS}
        check_at_most(self, "read", bounds)

    def limits(self) -> tuple[int, int, float]:
        """(max_file_bytes, max_notebook_bytes, git_timeout_seconds), as the local source takes them."""
        return self.max_file_bytes, self.max_notebook_bytes, self.git_timeout_seconds


@dataclasses.dataclass(frozen=True)
class LicenseConfig:
    allow: tuple[str, ...] = PERMISSIVE_LICENSES  # paper §3.1: MIT, Apache 2.0, BSD-2, BSD-3

    def __post_init__(self):
        object.__setattr__(self, "allow", canonical_spdx_ids(self.allow, "license.allow"))


@dataclasses.dataclass(frozen=True)
class StackOverflowConfig:
    """Selection and read limits for StackOverflow dumps (paper §3.2)."""

    max_answers: int = 10  # answers per question, the highest-scored first (§3.2: up to ten)
    min_answer_score: int = 0  # answers scored below this are left out (§3.2: non-negative)
    # §3.2 includes "all questions that have at least one answer", so a question whose answers
    # all score below min_answer_score is kept without them; True leaves such a question out.
    require_kept_answer: bool = False
    max_comments: int = 5  # comments per question and per answer, the earliest first (§3.2: up to five)
    range_bytes: int = 64 * 2**20  # plain XML files are read in byte ranges of this size, in parallel
    max_row_bytes: int = 16 * 2**20  # a longer row is rejected (too-large) unparsed, so memory stays bounded
    # The join sorts posts and comments into this many partitions by (site, post or question id)
    # on scratch storage; each is merged by one worker. More: more parallel merges, more run files.
    join_partitions: int = 16

    def __post_init__(self):
        limits = (("max_answers", 1), ("max_comments", 0), ("range_bytes", 1), ("max_row_bytes", 1024), ("join_partitions", 1))
        for name, least in limits:
            if getattr(self, name) < least:
                raise ConfigError(f"stackoverflow.{name} must be at least {least}, got {getattr(self, name)}")
        check_at_most(self, "stackoverflow", {"join_partitions": MAX_SHARDS, "max_row_bytes": MAX_READ_BYTES})


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
class NearDedupConfig:
    """Near-duplicate removal by MinHash LSH, beyond the paper (which removes exact copies only).

    Shingles, permutations, threshold and seed are BigCode's near-deduplication settings
    (bigcode-dataset near_deduplication/minhash_deduplication.py, used for The Stack and
    StarCoder): 5-token shingles, 256 permutations, Jaccard 0.7. BigCode's bands x rows,
    25 x 10, come from `optimal_param(0.7, 256)` weighing missed pairs and false candidates
    equally, which finds a pair at the threshold only half the time. Candidates are checked
    here, so a false one costs only a check: the same search with weights 0.95 (missed) and
    0.05 (false) gives 36 x 7, which finds a pair at the threshold with probability 0.955.
    """

    enabled: bool = False  # off: the paper's corpus (exact dedup only)
    shingle_tokens: int = 5  # alphanumeric tokens per shingle (BigCode: 5-grams)
    permutations: int = 256  # MinHash hash functions (BigCode: num_perm 256)
    bands: int = 36  # LSH bands: optimal_param(0.7, 256) with misses weighted 0.95 (BigCode, unchecked: 25)
    rows: int = 7  # signature values per band (BigCode: 10); bands x rows must not exceed permutations
    threshold: float = 0.7  # Jaccard similarity of the shingle sets at which two files are duplicates (BigCode: 0.7)
    check_jaccard: bool = True  # a candidate pair joins a cluster only if its true Jaccard >= threshold
    max_rounds: int = 4  # label rounds laid out, a GroupByKey each; pairs still unsettled after them join in one union
    seed: int = 42  # of the permutations; signatures compare only under the same seed (BigCode: 42)

    def __post_init__(self):
        for name in ("shingle_tokens", "permutations", "bands", "rows", "max_rounds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"dedup.near.{name} must be at least 1, got {getattr(self, name)}")
        check_at_most(self, "dedup.near", {"permutations": MAX_PERMUTATIONS})
        if self.bands * self.rows > self.permutations:
            raise ConfigError(
                f"dedup.near.bands x dedup.near.rows ({self.bands} x {self.rows}) must not exceed "
                f"dedup.near.permutations ({self.permutations})"
            )
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"dedup.near.threshold must be within (0, 1], got {self.threshold}")


@dataclasses.dataclass(frozen=True)
class DedupConfig:
    bloom_capacity: int = 1_000_000  # distinct keys the version's Bloom filter holds at bloom_error_rate
    bloom_error_rate: float = 0.001  # false-positive rate of the Bloom filter at capacity
    previous_versions: tuple[str, ...] = ()  # version directories whose dedup/bloom.bin excludes files
    near: NearDedupConfig = NearDedupConfig()  # MinHash LSH after exact dedup (off by default)

    def __post_init__(self):
        if self.bloom_capacity < 1:
            raise ConfigError(f"dedup.bloom_capacity must be at least 1, got {self.bloom_capacity}")
        if not 0.0 < self.bloom_error_rate < 1.0:
            raise ConfigError(f"dedup.bloom_error_rate must be within (0, 1), got {self.bloom_error_rate}")


@dataclasses.dataclass(frozen=True)
class ScrubConfig:
    """What the scrub stage (and the StackOverflow format stage) replace, and with what."""

    replacement: str = "removed@example.com"  # email addresses (paper footnote 7)
    # Beyond the paper, as StarCoder's PII step: API keys, tokens and private keys found by
    # Kingfisher's rules (transforms/cleaning/pii/secrets.py), and public IPv4 and IPv6 addresses. False leaves them in the text.
    secrets: bool = True
    ip_addresses: bool = True
    key_replacement: str = "<KEY>"  # StarCoder's placeholder for keys
    ip_replacement: str = "<IP_ADDRESS>"


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    document_shards: int = 4  # Parquet files under documents/; each is sorted by id
    rejected_shards: int = 1
    # The first bytes of a rejected file's text kept in rejected/ (`code-corpus show`, the report); 0: none.
    rejected_excerpt_bytes: int = 400

    def __post_init__(self):
        for name in ("document_shards", "rejected_shards"):
            if getattr(self, name) < 1:
                raise ConfigError(f"output.{name} must be at least 1, got {getattr(self, name)}")
        check_at_most(self, "output", {"document_shards": MAX_SHARDS, "rejected_shards": MAX_SHARDS})
        if not 0 <= self.rejected_excerpt_bytes <= MAX_EXCERPT_BYTES:
            raise ConfigError(
                f"output.rejected_excerpt_bytes must be 0 to {MAX_EXCERPT_BYTES}, got {self.rejected_excerpt_bytes}"
            )


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
        check_at_most(self, "binarize", {"num_shards": MAX_SHARDS, "valid_shards": MAX_SHARDS})
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"binarize.valid_fraction must be in [0, 1), got {self.valid_fraction}")


# How `infill` and `generate` sample (paper §5: nucleus top-p 0.95 at temperature 0.2 for pass@1,
# also the defaults of InCoder's example code); temperature 0 decodes greedily.
SAMPLE_TEMPERATURE = 0.2
SAMPLE_TOP_P = 0.95


@dataclasses.dataclass(frozen=True)
class ModelPreset:
    """An XGLM shape (paper §4) named by `train.preset`, in fairseq's flag names."""

    d_model: int  # --decoder-embed-dim
    ffn_dim: int  # --decoder-ffn-embed-dim
    layers: int  # --decoder-layers
    heads: int  # --decoder-attention-heads
    dropout: float  # residual and attention dropout


MODEL_PRESETS = {
    "tiny": ModelPreset(d_model=64, ffn_dim=256, layers=2, heads=4, dropout=0.0),
    "125m": ModelPreset(d_model=768, ffn_dim=3072, layers=12, heads=12, dropout=0.1),
    "1.3b": ModelPreset(d_model=2048, ffn_dim=8192, layers=24, heads=32, dropout=0.1),  # Table 8, INCODER-1.3B
    "6.7b": ModelPreset(d_model=4096, ffn_dim=16384, layers=32, heads=32, dropout=0.1),  # Table 8, INCODER-6.7B
}


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
        return to_plain(self)

    def hash(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def replace(self, **changes: Any) -> "PipelineConfig":
        return dataclasses.replace(self, **changes)


def load_config(path: str, overrides: dict | None = None) -> PipelineConfig:
    """Read a YAML config file; relative paths in it are relative to the file."""
    if not os.path.isfile(path):
        what = "is not a regular file" if os.path.exists(path) else "does not exist"
        raise ConfigError(f"config file {path!r} {what}")
    data = load_yaml_file(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    data = dict(data, **(overrides or {}))
    data["base_dir"] = os.path.dirname(os.path.abspath(path))
    return from_mapping(PipelineConfig, data, path)
