"""Hostile configuration: each file is built here, and each must fail fast naming the key or the file.

Classes: numbers that switch a check off or cost without bound (NaN, inf, a billion
shards, integers past int64); YAML that explodes when walked (alias bombs, alias loops),
that the parser cannot hold (100,000-deep nesting, a 5,000-digit integer) or that is not
UTF-8. Loads that could hang run in a child process with a timeout, and the command line
is checked to end in one error line, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from schemas.config import load_config
from schemas.errors import ConfigError
from tests.conftest import ROOT, run_cli

CHILD_TIMEOUT = 60  # seconds; a refused config takes well under one


def write(tmp_path, text: str | bytes, name: str = "c.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def load_in_child(path: str) -> str:
    """load_config(path) in a fresh interpreter, bounded in time; the ConfigError's message it printed."""
    code = (
        "import sys\nfrom schemas.config import load_config\nfrom schemas.errors import ConfigError\n"
        "try:\n    load_config(sys.argv[1])\nexcept ConfigError as e:\n    print(e)\n    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=ROOT)
    assert proc.returncode == 3, f"expected a ConfigError, got exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize(
    "yaml_text, key",
    [
        ("filters:\n  min_alnum_fraction: .nan\n", "filters.min_alnum_fraction"),
        ("filters:\n  max_avg_line_tokens: .inf\n", "filters.max_avg_line_tokens"),
        ("dedup:\n  near:\n    threshold: .NaN\n", "dedup.near.threshold"),
        ("dedup:\n  bloom_error_rate: 1e999\n", "dedup.bloom_error_rate"),  # YAML 1.1 reads it as a string
        ("format:\n  star_boundaries: [1, 2, .nan, 4, 5]\n", "format.star_boundaries[2]"),
        ("tokenizer:\n  sample_fraction: -.inf\n", "tokenizer.sample_fraction"),
        ("sources:\n  github:\n    http:\n      timeout_seconds: .nan\n", "sources.github.http.timeout_seconds"),
        ("read:\n  git_timeout_seconds: .inf\n", "read.git_timeout_seconds"),
    ],
)
def test_nan_and_infinite_numbers_are_refused_naming_the_key(tmp_path, yaml_text, key):
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, "name: x\n" + yaml_text))
    assert f"{key}: must be a finite number" in str(refused.value)


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("output:\n  document_shards: 1000000000\n", "output.document_shards must be at most 10,000, got 1,000,000,000"),
        ("output:\n  rejected_shards: 20000\n", "output.rejected_shards must be at most 10,000"),
        ("binarize:\n  num_shards: 100000\n", "binarize.num_shards must be at most 10,000"),
        ("stackoverflow:\n  join_partitions: 1000000\n", "stackoverflow.join_partitions must be at most 10,000"),
        ("dedup:\n  near:\n    permutations: 1000000\n", "dedup.near.permutations must be at most 4,096"),
        ("read:\n  max_file_bytes: 100000000000\n", "read.max_file_bytes must be at most 2,147,483,647"),
        ("sources:\n  bigquery:\n    read_streams: 1000000\n", "sources.bigquery: read_streams must be at most 10,000"),
        (
            "sources:\n  datasets:\n    - {name: d, paths: [x.parquet], preset: the-stack-v1, batch_rows: 1000000000}\n",
            r"sources.datasets\[0\]: batch_rows must be at most 1,000,000",
        ),
        ("read:\n  git_timeout_seconds: 1e300\n", "read.git_timeout_seconds must be at most 86,400, got 1e[+]300"),
        ("seed: 100000000000000000000\n", "seed: a whole number of 67 bits is out of range"),
        ("train:\n  lr: 100000000000000000000000000000000000000000000000\n", "an integer of 48 digits is out of range"),
    ],
)
def test_numbers_beyond_what_their_use_allows_are_refused_with_the_bound(tmp_path, yaml_text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, "name: x\n" + yaml_text))


def alias_bomb(levels: int = 9, fan: int = 9) -> str:
    """Billion laughs in YAML: anchors inside a typed list, each a list of `fan` aliases of the
    last, and a typed key that names the last (fan^levels strings once expanded)."""
    items = ["&b0 [" + ", ".join(["lol"] * fan) + "]"]
    items += [f"&b{i} [" + ", ".join([f"*b{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return (
        "name: x\nfilters:\n  extra_generated_phrases:\n"
        + "".join(f"    - {item}\n" for item in items)
        + f"seed: *b{levels - 1}\n"
    )


def test_an_alias_bomb_in_a_typed_key_fails_fast_naming_the_file(tmp_path):
    # Walked, or quoted in an "expected int, got [...]" message, it is 387 million strings.
    path = write(tmp_path, alias_bomb())
    message = load_in_child(path)
    assert message.startswith(f"{path}: holds more than 100000 values once its aliases (*name) are expanded")


def test_an_alias_that_holds_itself_is_refused(tmp_path):
    path = write(tmp_path, "name: x\nfilters:\n  extra_generated_phrases: &loop [a, *loop]\n")
    assert "refers to a list or mapping that holds it" in load_in_child(path)


def test_aliases_that_expand_to_a_sane_config_still_load(tmp_path):
    text = "name: x\nlicense:\n  allow: &ok [MIT, BSD-3-Clause]\nsources:\n  bigquery:\n    licenses: *ok\n"
    config = load_config(write(tmp_path, text))
    assert config.license.allow == config.sources.bigquery.licenses == ("MIT", "BSD-3-Clause")


def test_a_config_that_is_not_utf8_names_the_file_and_the_byte(tmp_path):
    path = write(tmp_path, b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: not UTF-8 text \(byte 9 is 0xe9\)"):
        load_config(path)


def test_yaml_nested_100000_deep_names_the_file(tmp_path):
    path = write(tmp_path, "name: x\nfilters:\n  extra_generated_phrases: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert load_in_child(path).startswith(f"{path}: lists or mappings nested more than 64 deep (at line 3)")


def test_a_5000_digit_integer_names_the_file_and_the_line(tmp_path):
    path = write(tmp_path, "name: x\nseed: " + "7" * 5000 + "\n")
    message = load_in_child(path)
    assert message.startswith(f"{path}: not valid YAML:")
    assert "an integer of 5000 digits is out of range" in message and "line 2, column 7" in message


def test_a_float_key_given_something_else_says_it_expected_a_number(tmp_path):
    with pytest.raises(ConfigError, match=r"filters.min_alnum_fraction: expected a number, got True"):
        load_config(write(tmp_path, "name: x\nfilters:\n  min_alnum_fraction: true\n"))
    with pytest.raises(ConfigError, match=r"train.lr: expected a number, got \[1\]"):
        load_config(write(tmp_path, "name: x\ntrain:\n  lr: [1]\n"))


@pytest.mark.parametrize(
    "text, expected",
    [
        (b"name: x\nseed: " + b"9" * 5000 + b"\n", "an integer of 5000 digits"),
        (b"name: \xff\xfe\n", "not UTF-8 text"),
        (b"name: x\noutput:\n  document_shards: 1000000000\n", "output.document_shards must be at most 10,000"),
        (b"name: x\nfilters:\n  min_alnum_fraction: .nan\n", "filters.min_alnum_fraction: must be a finite number"),
    ],
)
def test_the_command_line_ends_in_one_error_line_not_a_traceback(tmp_path, text, expected):
    path = write(tmp_path, text)
    proc = run_cli("run", "--config", path, "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0] and path in errors[0]
    assert not (tmp_path / "out").exists()
