"""Counts per stage and reason, and the check that every record is accounted for.

Stages emit tallies ((stage, kind, reason), n) with kind in/kept/rejected/stat. This
module folds the summed tallies into the manifest's `counts` and checks, before a
version is committed, that for every stage in = kept + rejected and that each stage
of a chain reads exactly what the stage before it kept.
"""

from __future__ import annotations

from collections import defaultdict


class AccountingError(RuntimeError):
    """Records went missing or appeared from nowhere between stages."""


def fold_tallies(pairs: list) -> dict:
    """[[stage, kind, reason], n] pairs → {stage: {in, kept, rejected: {reason: n}, stats}}."""
    counts: dict = defaultdict(lambda: {"in": 0, "kept": 0, "rejected": {}, "stats": {}})
    for (stage, kind, reason), n in pairs:
        entry = counts[stage]
        if kind in ("in", "kept"):
            entry[kind] += n
        elif kind == "rejected":
            entry["rejected"][reason] = entry["rejected"].get(reason, 0) + n
        elif kind == "stat":
            entry["stats"][reason] = entry["stats"].get(reason, 0) + n
    return {
        stage: dict(v, rejected=dict(sorted(v["rejected"].items())), stats=dict(sorted(v["stats"].items())))
        for stage, v in sorted(counts.items())
    }


def check_counts(
    counts: dict,
    chains: list[list[str]],
    outputs: dict[str, tuple[list[str], int]],
    links: list[tuple[str, str, str]] = (),
) -> None:
    """Raise AccountingError unless every record is accounted for.

    chains: stage names in flow order (each stage reads what the previous one kept).
    outputs: {name: (stages whose kept records make up the output, rows written)}.
    links: (stage, stat, next stage) where a grouping stage's stat must equal what the next reads.
    """
    problems = []
    for stage, c in counts.items():
        rejected = sum(c["rejected"].values())
        if c["in"] != c["kept"] + rejected:
            problems.append(f"stage {stage}: read {c['in']} != kept {c['kept']} + rejected {rejected}")
    for chain in chains:
        for before, after in zip(chain, chain[1:]):
            kept = counts.get(before, {}).get("kept", 0)
            read = counts.get(after, {}).get("in", 0)
            if kept != read:
                problems.append(f"stage {after} read {read} records but stage {before} kept {kept}")
    for stage, stat, after in links:
        emitted = counts.get(stage, {}).get("stats", {}).get(stat, 0)
        read = counts.get(after, {}).get("in", 0)
        if emitted != read:
            problems.append(f"stage {after} read {read} records but stage {stage} emitted {emitted} ({stat})")
    for name, (stages, rows) in outputs.items():
        expected = sum(counts.get(s, {}).get("kept", 0) for s in stages)
        if expected != rows:
            problems.append(f"{name}: wrote {rows} rows but stages {stages} kept {expected}")
    if problems:
        raise AccountingError("records are not accounted for:\n  " + "\n  ".join(problems))


def total_rejected(counts: dict) -> int:
    return sum(sum(c["rejected"].values()) for c in counts.values())
