"""The labelled PII benchmark's items (bench/pii_benchmark/): scrubbing leaves code valid, the
prefilter loses no finding, and the kept items are what their generator writes."""

from __future__ import annotations

import importlib.util
import os

from schemas.config import ScrubConfig
from tests.conftest import ROOT
from transforms.cleaning.pii import emails, ip_addresses, secrets
from transforms.cleaning.pii.scrub import EMAIL, find_pii, scrub_text

BENCHMARK = os.path.join(ROOT, "bench", "pii_benchmark")


def bench_module(name: str):
    """A module of bench/pii_benchmark (a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARK, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


labelled = bench_module("labelled")
PARSERS, load_items, parses = labelled.PARSERS, labelled.load_items, labelled.parses
CONFIG = ScrubConfig()


def test_every_python_json_and_yaml_item_that_parsed_still_parses_after_scrubbing():
    items = [item for item in load_items() if item["lang"] in PARSERS and parses(item["lang"], item["text"])]
    assert len(items) > 200
    broken = []
    for item in items:
        scrubbed, replaced = scrub_text(item["text"], CONFIG)
        if not parses(item["lang"], scrubbed):
            broken.append(item["id"])
    assert broken == []


def without_prefilter(text: str) -> list[secrets.Finding]:
    found = [secrets.Finding(start, end, EMAIL, EMAIL) for start, end in emails.find_emails(text)] + secrets.find_secrets(text)
    found += [secrets.Finding(start, end, kind, kind) for start, end, kind in ip_addresses.find_addresses(text)]
    return secrets.non_overlapping(found)


def test_the_prefilter_skips_no_finding():
    items = load_items()
    assert sum(bool(without_prefilter(item["text"])) for item in items) > 400
    for item in items:
        assert find_pii(item["text"], CONFIG) == without_prefilter(item["text"]), item["id"]


def test_the_kept_items_are_what_the_generator_writes():
    assert bench_module("make_items").make_items() == load_items()
