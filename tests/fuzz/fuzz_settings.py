"""Hypothesis settings shared by the fuzz targets.

In the test suite every target runs a short, derandomized search (the same examples
on every run, so CI is repeatable). Setting FUZZ_EXAMPLES runs a longer, random one:

    FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/fuzz -q

A failure prints the falsifying example and a `@reproduce_failure` blob; rerun a
random search with `--hypothesis-seed=N` to repeat it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG_RUN = "FUZZ_EXAMPLES" in os.environ

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    derandomize=not LONG_RUN,
    deadline=None,  # a shared 2-core machine makes per-example timing meaningless
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
