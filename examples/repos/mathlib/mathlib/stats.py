"""Summary statistics over plain Python sequences."""

import math


def mean(values):
    """Arithmetic mean of a non-empty sequence."""
    if not values:
        raise ValueError("mean of an empty sequence")
    return sum(values) / len(values)


def variance(values, ddof=0):
    """Population variance by default; ddof=1 gives the sample variance."""
    centre = mean(values)
    squares = sum((value - centre) ** 2 for value in values)
    return squares / (len(values) - ddof)


def stdev(values, ddof=0):
    return math.sqrt(variance(values, ddof))


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def zscores(values):
    centre, spread = mean(values), stdev(values)
    return [(value - centre) / spread for value in values]
