"""Frozen dataclasses from plain YAML data: unknown keys and wrong types fail at once, naming the key path."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from schemas.errors import ConfigError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what a config's whole numbers may be (Arrow and numpy hold int64)


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
        values[name] = convert_value(hints[name], value, f"{where}.{name}" if where else name)
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


def convert_value(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return convert_value(inner[0], value, where)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0]
        return tuple(convert_value(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): convert_value(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return finite_float(value, where)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        if hint is int and not INT64_MIN <= value <= INT64_MAX:
            raise ConfigError(f"{where}: a whole number of {value.bit_length()} bits is out of range (at most 2^63-1)")
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{where}: unsupported config type {hint}")


def finite_float(value: int | float | str, where: str) -> float:
    """A float config value: a finite number (NaN switches a comparison off; inf means no bound)."""
    try:  # YAML 1.1 reads 1e-3 (no dot) as a string
        number = float(value)
    except (ValueError, OverflowError):
        shown = f"a whole number of {value.bit_length()} bits" if isinstance(value, int) else repr(value)
        raise ConfigError(f"{where}: expected a number, got {shown}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    return number


def to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.metadata.get("internal")}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value
