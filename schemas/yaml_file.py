"""A YAML config file read into plain data with its hostile shapes refused, naming the file.

PyYAML builds an alias once and shares it, so an alias bomb (each level nine aliases of
the last) loads in milliseconds and only explodes when its values are walked: here the
loaded data is measured as if every alias were expanded (each shared value counted
once per use, in one pass over the distinct values) and refused past MAX_VALUES, and an
alias that refers to a value holding it (a loop) is refused. Bytes that are not UTF-8,
nesting deeper than MAX_DEPTH, and integers too long to convert each become one
ConfigError naming the file, never a traceback or a long wait.
"""

from __future__ import annotations

from typing import Any

import yaml

from schemas.errors import ConfigError

# Values (mappings, lists and scalars) a config may hold with every alias expanded. A full
# config is a few hundred; a bomb is millions.
MAX_VALUES = 100_000
# Digits of an integer written in a config: int64 has 19; longer ones are refused as they
# are parsed (Python refuses to convert more than 4,300 digits, with a ValueError).
MAX_INTEGER_DIGITS = 40
# Lists and mappings inside each other. A config needs six; PyYAML's scanner slows with the
# square of the depth (100,000 levels take seconds, a million minutes) and its composer
# recurses, so the depth is checked on the parser's events before anything is composed.
MAX_DEPTH = 64


class BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader whose integers are refused, with their line and column, when absurdly long."""

    def construct_yaml_int(self, node):
        digits = sum(c.isalnum() for c in str(node.value))
        if digits > MAX_INTEGER_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {digits} digits is out of range (at most {MAX_INTEGER_DIGITS})", node.start_mark
            )
        return super().construct_yaml_int(node)


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def load_yaml_file(path: str) -> Any:
    """The plain data of a YAML file; every way it cannot be a config is a ConfigError naming `path`."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start} is {raw[e.start]:#04x}); save the config as UTF-8") from None
    try:
        check_depth(text, path)
        data = yaml.load(text, Loader=BoundedLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    check_expanded_size(data, path)
    return data


def check_depth(text: str, path: str) -> None:
    """Refuse lists and mappings nested deeper than MAX_DEPTH, from the parser's events (no recursion)."""
    depth = 0
    for event in yaml.parse(text, Loader=BoundedLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(
                    f"{path}: lists or mappings nested more than {MAX_DEPTH} deep (at line {event.start_mark.line + 1}); "
                    "a config is far shallower"
                )
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _children(value: Any) -> list:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    return list(value) if isinstance(value, list) else []


def check_expanded_size(data: Any, path: str) -> None:
    """Refuse data that holds itself, or more than MAX_VALUES values with its aliases expanded.

    Iterative, so no depth exhausts the stack; each distinct list or mapping is visited
    once and its expanded size kept, so the check costs the size of the file, not of the bomb.
    """
    sizes: dict[int, int] = {}
    open_now: set[int] = set()
    stack = [(data, False)]
    while stack:
        value, finished = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        key = id(value)
        if finished:
            open_now.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(c), 1) if isinstance(c, (dict, list)) else 1 for c in _children(value))
            if sizes[key] > MAX_VALUES:
                raise ConfigError(
                    f"{path}: holds more than {MAX_VALUES} values once its aliases (*name) are expanded; "
                    "a config is far smaller (an alias bomb?)"
                )
            continue
        if key in sizes:
            continue
        if key in open_now:
            raise ConfigError(f"{path}: an alias (*name) refers to a list or mapping that holds it, a loop")
        open_now.add(key)
        stack.append((value, True))
        stack.extend((c, False) for c in _children(value))
