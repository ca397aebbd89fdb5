"""Ranking metrics for code search: queries against candidate snippets."""

from typing import List, Sequence


def reciprocal_rank(ranked: Sequence[str], relevant: str) -> float:
    """1 / position of the relevant snippet in the ranking, 0 if it is missing."""
    for position, snippet in enumerate(ranked, start=1):
        if snippet == relevant:
            return 1.0 / position
    return 0.0


def mean_reciprocal_rank(rankings: List[Sequence[str]], relevant: List[str]) -> float:
    """Mean of the reciprocal ranks over all queries."""
    if not rankings:
        return 0.0
    return sum(reciprocal_rank(r, g) for r, g in zip(rankings, relevant)) / len(rankings)
