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
import types
import typing
from typing import Any

import yaml

STAGES = ("corpus", "tokenizer", "binarize", "train")

PERMISSIVE_LICENSES = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause")  # paper §3.1


class ConfigError(ValueError):
    """A configuration problem, phrased as what to change."""


@dataclasses.dataclass(frozen=True)
class LocalSource:
    """A directory whose subdirectories are repositories (plain folders or git work trees)."""

    path: str
    metadata: str | None = None  # optional JSON file: {repo: {"stars": int, "origin": "github", "repo": "owner/name"}}


@dataclasses.dataclass(frozen=True)
class SourcesConfig:
    local: tuple[LocalSource, ...] = ()


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
class OutputConfig:
    document_shards: int = 4  # Parquet files under documents/; each is sorted by id
    rejected_shards: int = 1

    def __post_init__(self):
        for name in ("document_shards", "rejected_shards"):
            if getattr(self, name) < 1:
                raise ConfigError(f"output.{name} must be at least 1, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    name: str
    seed: int = 0  # mixed into every per-record random choice
    stages: tuple[str, ...] = ("corpus",)
    sources: SourcesConfig = SourcesConfig()
    read: ReadConfig = ReadConfig()
    license: LicenseConfig = LicenseConfig()
    output: OutputConfig = OutputConfig()
    # Directory that relative paths in this config are resolved against (not part of the config hash).
    base_dir: str = dataclasses.field(default=".", metadata={"internal": True})

    def __post_init__(self):
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ConfigError(f"name must be a plain directory name, got {self.name!r}")
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
