"""The labelled items and the parse check, shared by bench_pii.py and the tests that read the benchmark."""

from __future__ import annotations

import ast
import json
import os

import yaml

ITEMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "items.jsonl")
PARSERS = {"python": ast.parse, "json": json.loads, "yaml": yaml.safe_load}  # items whose text must still parse


def load_items() -> list[dict]:
    with open(ITEMS, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def parses(lang: str, text: str) -> bool:
    try:
        PARSERS[lang](text)
        return True
    except Exception:
        return False
