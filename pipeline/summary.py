"""Readable tables of a version's counts and files, for the run's summary and `inspect`."""

from __future__ import annotations


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A plain-text table; `align` has one 'l' or 'r' per column."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    align = align or "l" + "r" * (len(header) - 1)
    lines = []
    for n, row in enumerate(cells):
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "" if value is None else str(value)


def flow_order(counts: dict, flow: list[list[str]] | None) -> list[str]:
    """Stage names in flow order (the manifest's `flow` chains), then any others by name."""
    ordered = [s for chain in flow or [] for s in chain if s in counts]
    return list(dict.fromkeys(ordered)) + sorted(s for s in counts if s not in ordered)


def counts_table(counts: dict, flow: list[list[str]] | None = None) -> str:
    """One row per stage: read, kept, rejected, and the rejection reasons."""
    rows = []
    for stage in flow_order(counts, flow):
        c = counts[stage]
        reasons = ", ".join(f"{r}={n:,}" for r, n in sorted(c["rejected"].items(), key=lambda kv: -kv[1]))
        rows.append([stage, c["in"], c["kept"], sum(c["rejected"].values()), reasons])
    return table(["stage", "read", "kept", "rejected", "reasons"], rows, "lrrrl")


def stats_table(counts: dict) -> str:
    rows = [[stage, name, n] for stage, c in counts.items() for name, n in sorted(c.get("stats", {}).items())]
    return table(["stage", "statistic", "value"], rows, "llr") if rows else ""


def files_table(files: dict) -> str:
    rows = [[path, f.get("rows"), f["bytes"], f["sha256"][:16]] for path, f in sorted(files.items())]
    return table(["file", "rows", "bytes", "sha256"], rows, "lrrl")


def describe_manifest(manifest: dict) -> str:
    """The whole manifest as the text `inspect` prints."""
    head = [
        ["dataset", manifest.get("name")],
        ["version", manifest.get("version")],
        ["parents", ", ".join(manifest.get("parents", [])) or "-"],
        ["code version", manifest.get("code_version")],
        ["config hash", manifest.get("config_hash")],
        ["stages", ", ".join(manifest.get("stages", []))],
        ["documents", manifest.get("documents")],
        ["rejected", manifest.get("rejected")],
    ]
    parts = [table(["field", "value"], head, "ll")]
    if manifest.get("counts"):
        parts += ["", counts_table(manifest["counts"], manifest.get("flow"))]
        stats = stats_table(manifest["counts"])
        if stats:
            parts += ["", stats]
    if manifest.get("files"):
        parts += ["", files_table(manifest["files"])]
    return "\n".join(parts)
