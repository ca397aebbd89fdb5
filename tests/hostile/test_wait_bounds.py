"""Timeouts and waits past a day are refused when the config loads, naming the key and the bound.

Before, `sources.github.http.timeout_seconds: 1e300` loaded, and the crawl's first request
failed deep in the socket layer ("timestamp out of range for platform time_t").
"""

from __future__ import annotations

import pytest

from schemas.config import load_config
from schemas.errors import ConfigError


def write(tmp_path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text("name: x\n" + text)
    return str(path)


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        (
            "sources:\n  github:\n    http:\n      timeout_seconds: 1e300\n",
            "sources.github.http: timeout_seconds must be at most 86,400",
        ),
        (
            "sources:\n  gitlab:\n    http:\n      max_wait_seconds: 100000\n",
            "sources.gitlab.http: max_wait_seconds must be at most 86,400",
        ),
        (
            "sources:\n  github:\n    http:\n      max_backoff_seconds: 1e12\n",
            "sources.github.http: max_backoff_seconds must be at most",
        ),
        (
            "sources:\n  github:\n    rate:\n      max_wait_seconds: 1e20\n",
            "sources.github.rate: max_wait_seconds must be at most 86,400",
        ),
        ("read:\n  git_timeout_seconds: 86401\n", "read.git_timeout_seconds must be at most 86,400"),
    ],
)
def test_a_wait_past_a_day_is_refused_with_its_key(tmp_path, yaml_text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, yaml_text))


def test_a_day_itself_is_accepted(tmp_path):
    config = load_config(write(tmp_path, "sources:\n  github:\n    http:\n      timeout_seconds: 86400\n"))
    assert config.sources.github.http.timeout_seconds == 86400
