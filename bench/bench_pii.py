"""Benchmark: PII redaction on the labelled items of bench/pii_benchmark/, ours beside StarCoder's.

Scores the scrub stage (`transforms.cleaning.pii.scrub`) and BigCode's StarCoder redaction
(`bench/pii_benchmark/starcoder.py`, re-implemented from its published code) on the same
items, as bench/pii_benchmark/README.md says: recall and precision per kind (email,
secret, ipv4, ipv6) and per secret subkind; the share of Python, JSON and YAML items
that parse before redaction and still parse after it; MB/s per core (CPU seconds of
this process) on the items and on the first `--corpus-mb` MB of the .py files that
bench_cleaning.py reads (the installed site-packages). Then the secret scanners that
were candidates for the stage (`candidates.py`), secrets only, on the same items.

    .venv/bin/python bench/bench_pii.py                      # --corpus-mb 10 --peer-corpus-mb 1
    .venv/bin/python bench/bench_pii.py --show-misses        # also list every miss and false positive
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import sysconfig
import time

from bench_cleaning import installed_files, list_files

from schemas.config import ScrubConfig
from transforms.cleaning.pii import scrub, secrets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pii_benchmark"))
import candidates  # noqa: E402
import starcoder  # noqa: E402
from labelled import PARSERS, load_items, parses  # noqa: E402

KINDS = ("email", "secret", "ipv4", "ipv6")
CONFIG = ScrubConfig()


def ours(text: str) -> list[tuple[int, int, str, str]]:
    return [(f.start, f.end, f.kind, f.subkind) for f in scrub.find_pii(text, CONFIG)]


def ours_redact(text: str, findings) -> str:
    return scrub.scrub_text(text, CONFIG)[0]


def peer(text: str) -> list[tuple[int, int, str, str]]:
    return [(start, end, kind, "") for start, end, kind in starcoder.detect(text)]


def peer_redact(text: str, findings) -> str:
    return starcoder.redact(text, [f[:3] for f in findings])


DETECTORS = {"scrub": (ours, ours_redact), "starcoder": (peer, peer_redact)}


def covered(label: dict, spans: list[tuple[int, int]]) -> bool:
    """Whether the spans together cover every character of the label."""
    at = label["start"]
    for start, end in sorted(spans):
        if start <= at < end:
            at = end
    return at >= label["end"]


def score(items: list[dict], detect, redact, show: bool = False) -> dict:
    """Counts per kind and subkind: labels, found, replacements, right; parse counts; CPU seconds."""
    counts = collections.defaultdict(collections.Counter)
    parse = collections.Counter()
    cpu = 0.0
    for item in items:
        text, labels = item["text"], item["labels"]
        started = time.process_time()
        findings = detect(text)
        cpu += time.process_time() - started
        for label in labels:
            spans = [(f[0], f[1]) for f in findings if f[2] == label["kind"]]
            hit = covered(label, spans)
            for key in (label["kind"], f"{label['kind']}/{label['subkind']}"):
                counts[key]["labels"] += 1
                counts[key]["found"] += hit
            if show and not hit:
                print(f"  miss {item['id']} {label['subkind']}: {text[label['start'] : label['end']][:80]!r}")
        for start, end, kind, subkind in findings:
            match = [lb for lb in labels if lb["kind"] == kind and lb["start"] < end and start < lb["end"]]
            counts[kind]["replacements"] += 1
            counts[kind]["right"] += bool(match)
            if subkind:
                counts[f"{kind}/{subkind}"]["replacements"] += 1
                counts[f"{kind}/{subkind}"]["right"] += any(lb["subkind"] == subkind for lb in match)
            if show and not match:
                print(f"  false {item['id']} {kind}/{subkind}: {text[max(0, start - 20) : end + 10]!r}")
        if item["lang"] in PARSERS and parses(item["lang"], text):
            parse["before"] += 1
            parse["after"] += parses(item["lang"], redact(text, findings))
    return {"counts": counts, "parse": parse, "cpu": cpu, "mb": sum(len(i["text"].encode()) for i in items) / 1e6}


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "  -  "


def print_kinds(results: dict, keys: list[str]) -> None:
    names = list(results)
    print(f"{'kind':28} {'labels':>6} " + " ".join(f"{n + ' recall':>17} {n + ' precision':>20}" for n in names))
    for key in keys:
        cells = []
        for name in names:
            c = results[name]["counts"][key]
            cells.append(f"{ratio(c['found'], c['labels']):>17} {ratio(c['right'], c['replacements']):>20}")
        labels = max(results[n]["counts"][key]["labels"] for n in names)
        print(f"{key:28} {labels:6d} " + " ".join(cells))


def corpus_texts(mb: float) -> list[str]:
    """The first `mb` MB of the .py files bench_cleaning.py reads."""
    texts = []
    for path, _ in list_files(installed_files(sysconfig.get_paths()["purelib"]), int(mb * 1e6)):
        with open(path, "rb") as f:
            data = f.read()
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return texts


def throughput(detect, texts: list[str]) -> float:
    """MB per CPU second of this process."""
    detect(scrub.WARM_UP_TEXT + secrets.WARM_UP)
    started = time.process_time()
    for text in texts:
        detect(text)
    return sum(len(t.encode()) for t in texts) / 1e6 / max(time.process_time() - started, 1e-9)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-mb", type=float, default=10.0, help="MB of site-packages code for our speed (default 10)")
    parser.add_argument("--peer-corpus-mb", type=float, default=1.0, help="MB of it for StarCoder's speed (default 1)")
    parser.add_argument("--show-misses", action="store_true", help="list every miss and false positive")
    args = parser.parse_args(argv)
    items = load_items()
    print(f"{len(items)} items, {sum(len(i['labels']) for i in items)} labels")
    scrub.warm_up(CONFIG)  # the figures below time scanning, not building the scanners
    results = {}
    for name, (detect, redact) in DETECTORS.items():
        if args.show_misses:
            print(f"{name}:")
        results[name] = score(items, detect, redact, args.show_misses)
    subkinds = sorted({k for r in results.values() for k in r["counts"] if "/" in k and not k.endswith("/" + k.split("/")[0])})
    print_kinds(results, list(KINDS) + [k for k in subkinds if k.startswith("secret/")])
    print("\nparse after redaction (Python, JSON, YAML items that parse before):")
    for name, r in results.items():
        print(f"  {name:12} {r['parse']['after']}/{r['parse']['before']} = {ratio(r['parse']['after'], r['parse']['before'])}")
    corpus = corpus_texts(args.corpus_mb)
    peer_corpus = corpus_texts(args.peer_corpus_mb)
    print("\nMB/s per core (CPU seconds of detection):")
    for name, (detect, _) in DETECTORS.items():
        texts = corpus if name == "scrub" else peer_corpus
        mb = sum(len(t.encode()) for t in texts) / 1e6
        on_items = results[name]["mb"] / max(results[name]["cpu"], 1e-9)
        print(f"  {name:12} items {on_items:8.2f}   site-packages ({mb:.1f} MB) {throughput(detect, texts):8.2f}")
    scanners = candidates.available()
    print(f"\nsecret scanners (candidates), secrets only, on the items; speed on {args.peer_corpus_mb:g} MB of site-packages:")
    for name, scan in scanners.items():
        r = score(items, lambda t, scan=scan: [(*f, "") for f in scan(t)], lambda t, f: t)
        c = r["counts"]["secret"]
        speed = throughput(scan, peer_corpus)
        print(f"  {name:16} recall {ratio(c['found'], c['labels'])}  precision {ratio(c['right'], c['replacements'])}"
              f"  MB/s {speed:8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
