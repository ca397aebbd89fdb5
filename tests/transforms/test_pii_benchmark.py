"""The labelled PII benchmark's items (bench/pii_benchmark/): scrubbing leaves code valid, the
prefilter loses no finding, and the kept items are what their generator writes."""

from __future__ import annotations

import ast
import importlib.util
import json
import os

import yaml

from schemas.config import ScrubConfig
from tests.conftest import ROOT
from transforms import emails, ip_addresses, pii
from transforms.scrub import EMAIL, find_pii, scrub_text

BENCHMARK = os.path.join(ROOT, "bench", "pii_benchmark")
PARSERS = {"python": ast.parse, "json": json.loads, "yaml": yaml.safe_load}
CONFIG = ScrubConfig()


def load_items() -> list[dict]:
    with open(os.path.join(BENCHMARK, "items.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def parses(lang: str, text: str) -> bool:
    try:
        PARSERS[lang](text)
        return True
    except Exception:
        return False


def test_every_python_json_and_yaml_item_that_parsed_still_parses_after_scrubbing():
    items = [item for item in load_items() if item["lang"] in PARSERS and parses(item["lang"], item["text"])]
    assert len(items) > 200
    broken = []
    for item in items:
        scrubbed, replaced = scrub_text(item["text"], CONFIG)
        if not parses(item["lang"], scrubbed):
            broken.append(item["id"])
    assert broken == []


def without_prefilter(text: str) -> list[pii.Finding]:
    found = [pii.Finding(start, end, EMAIL, EMAIL) for start, end in emails.find_emails(text)] + pii.find_secrets(text)
    found += [pii.Finding(start, end, kind, kind) for start, end, kind in ip_addresses.find_addresses(text)]
    return pii.non_overlapping(found)


def test_the_prefilter_skips_no_finding():
    items = load_items()
    assert sum(bool(without_prefilter(item["text"])) for item in items) > 400
    for item in items:
        assert find_pii(item["text"], CONFIG) == without_prefilter(item["text"]), item["id"]


def test_the_kept_items_are_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("make_items", os.path.join(BENCHMARK, "make_items.py"))
    make_items = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_items)
    assert make_items.make_items() == load_items()
