"""`code-corpus diff A B`: what changed between two dataset versions.

Counts per stage and reason, documents added and removed (by id), config changes and
the tokenizer. Document ids are read one Parquet shard at a time (only the `id`
column); when both versions use the same shard layout, shards are compared pairwise,
so memory stays bounded by one shard's ids.
"""

from __future__ import annotations

import posixpath

from infra import storage
from infra.version import document_paths, read_manifest
from pipeline.summary import flow_order, table

MAX_IDS_SHOWN = 20
ID_BATCH_ROWS = 65536


def flatten(value, prefix: str = "") -> dict:
    """Nested config dicts → {'a.b.c': value}."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def config_changes(a: dict, b: dict) -> list[tuple[str, object, object]]:
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def count_changes(a: dict, b: dict, flow: list | None) -> list[tuple[str, str, int, int]]:
    """(stage, measure, count in A, count in B) for every measure that differs."""
    rows = []
    for stage in flow_order({**a, **b}, flow):
        ca, cb = a.get(stage, {}), b.get(stage, {})
        measures = [("read", "in"), ("kept", "kept")]
        for label, key in measures:
            if ca.get(key, 0) != cb.get(key, 0):
                rows.append((stage, label, ca.get(key, 0), cb.get(key, 0)))
        ra, rb = ca.get("rejected", {}), cb.get("rejected", {})
        for reason in sorted(set(ra) | set(rb)):
            if ra.get(reason, 0) != rb.get(reason, 0):
                rows.append((stage, f"rejected:{reason}", ra.get(reason, 0), rb.get(reason, 0)))
    return rows


def _ids(paths: list[str]) -> set[str]:
    ids: set[str] = set()
    for path in paths:
        for batch in storage.parquet_batches(path, ["id"], ID_BATCH_ROWS):
            ids.update(batch.column("id").to_pylist())
    return ids


def document_changes(a_dir: str, b_dir: str) -> tuple[list[str], list[str]]:
    """(ids added in B, ids removed from A), each sorted."""
    sa, sb = document_paths(a_dir), document_paths(b_dir)
    pairs = (
        [([x], [y]) for x, y in zip(sa, sb)]
        if [posixpath.basename(p) for p in sa] == [posixpath.basename(p) for p in sb]
        else [(sa, sb)]
    )
    added, removed = [], []
    for pa, pb in pairs:
        ia, ib = _ids(pa), _ids(pb)
        added.extend(ib - ia)
        removed.extend(ia - ib)
    return sorted(added), sorted(removed)


def tokenizer_hash(manifest: dict) -> str | None:
    tok = manifest.get("tokenizer")
    return tok.get("hash") if isinstance(tok, dict) else None


def diff_versions(a_dir: str, b_dir: str) -> dict:
    ma, mb = read_manifest(a_dir), read_manifest(b_dir)
    added, removed = document_changes(a_dir, b_dir)
    return {
        "a": f"{ma['name']}/{ma['version']}",
        "b": f"{mb['name']}/{mb['version']}",
        "config": config_changes(ma.get("config", {}), mb.get("config", {})),
        "counts": count_changes(ma.get("counts", {}), mb.get("counts", {}), mb.get("flow") or ma.get("flow")),
        "documents": {"a": ma.get("documents"), "b": mb.get("documents"), "added": added, "removed": removed},
        "tokenizer": {"a": tokenizer_hash(ma), "b": tokenizer_hash(mb)},
    }


def render_diff(d: dict, all_ids: bool = False) -> str:
    docs = d["documents"]
    lines = [f"diff {d['a']} -> {d['b']}", ""]
    lines.append(f"documents: {docs['a']} -> {docs['b']} (+{len(docs['added'])} added, -{len(docs['removed'])} removed)")
    for sign, ids in (("+", docs["added"]), ("-", docs["removed"])):
        shown = ids if all_ids else ids[:MAX_IDS_SHOWN]
        lines += [f"  {sign} {i}" for i in shown]
        if len(shown) < len(ids):
            lines.append(f"  {sign} ... {len(ids) - len(shown)} more (--all-ids lists them)")
    tok = d["tokenizer"]
    lines += ["", f"tokenizer: {'unchanged' if tok['a'] == tok['b'] else 'changed'} ({tok['a']} -> {tok['b']})", ""]
    if d["config"]:
        lines.append(table(["config key", "A", "B"], [[k, repr(a), repr(b)] for k, a, b in d["config"]], "lll"))
    else:
        lines.append("config: unchanged")
    lines.append("")
    if d["counts"]:
        rows = [[s, m, a, b, f"{b - a:+,}"] for s, m, a, b in d["counts"]]
        lines.append(table(["stage", "count", "A", "B", "change"], rows, "llrrr"))
    else:
        lines.append("counts: unchanged")
    return "\n".join(lines)
