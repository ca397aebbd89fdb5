"""Bad configuration fails at once with a message that says what to change."""

from __future__ import annotations

import os

import pytest

from pipeline.options import make_pipeline_options
from pipeline.run import parse_stages
from schemas.config import ConfigError, load_config
from tests.conftest import EXAMPLES, SAMPLE_CONFIG, run_cli


def write(tmp_path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_sample_config_loads_with_paths_relative_to_the_file():
    config = load_config(SAMPLE_CONFIG)
    assert config.name == "sample"
    assert config.resolve(config.sources.local[0].path).endswith("examples/repos")


def test_unknown_key_names_the_key_and_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"license: unknown key\(s\) \['alow'\]; valid keys are \['allow'\]"):
        load_config(write(tmp_path, "name: x\nlicense:\n  alow: [MIT]\n"))


def test_wrong_type_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match=r"read.max_file_bytes: expected int"):
        load_config(write(tmp_path, "name: x\nread:\n  max_file_bytes: lots\n"))


def test_missing_source_path_fails_before_running(tmp_path):
    path = write(tmp_path, "name: x\nsources:\n  local:\n    - path: nowhere\n")
    proc = run_cli("run", "--config", path, "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode != 0
    assert "sources.local[0].path" in proc.stderr and "nowhere" in proc.stderr
    assert not (tmp_path / "out" / "x").exists() or not any((tmp_path / "out" / "x").iterdir())


def test_bad_runner_option_is_reported():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['--direct_num_workerz=2'\]"):
        make_pipeline_options(["--direct_num_workerz=2"])
    with pytest.raises(ConfigError, match="--runner 'NoSuchRunner'"):
        make_pipeline_options(["--runner", "NoSuchRunner"])


def test_bad_runner_option_from_the_cli(tmp_path):
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", str(tmp_path), "--runner=Nope", check=False)
    assert proc.returncode == 2 and "--runner 'Nope'" in proc.stderr


def test_stage_ranges():
    assert parse_stages("corpus", ()) == ["corpus"]
    with pytest.raises(ConfigError, match="unknown stage"):
        parse_stages("corpus..frobnicate", ())


def test_float_keys_accept_yaml_exponents(tmp_path):
    config = load_config(write(tmp_path, "name: x\ntrain:\n  lr: 3e-4\n"))
    assert config.train.lr == 0.0003
    with pytest.raises(ConfigError, match=r"train.lr: expected a number, got 'fast'"):
        load_config(write(tmp_path, "name: x\ntrain:\n  lr: fast\n"))


def test_unreachable_output_store_fails_before_running():
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", "nostore://bucket/datasets", check=False)
    assert proc.returncode != 0
    assert "error: --out: no filesystem can reach 'nostore://bucket/datasets'" in proc.stderr
    assert "stage corpus: starting" not in proc.stderr
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--previous", "nostore://bucket/v0001", check=False)
    assert proc.returncode != 0 and "error: --previous: no filesystem can reach" in proc.stderr


DATAFLOW = ["--runner", "DataflowRunner", "--project", "p", "--region", "us-central1", "--temp_location", "gs://b/tmp"]


def test_dataflow_run_with_inputs_or_outputs_on_local_disk_fails_before_running(tmp_path):
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", "gs://b/datasets", *DATAFLOW, check=False)
    assert proc.returncode != 0 and "sources.local reads repositories from this machine's disk" in proc.stderr

    config = tmp_path / "so.yaml"
    config.write_text(f"name: so\nsources:\n  stackoverflow: [{os.path.join(EXAMPLES, 'stackoverflow')}]\n")
    proc = run_cli("run", "--config", str(config), "--out", str(tmp_path), *DATAFLOW, check=False)
    assert proc.returncode != 0 and "the workers cannot reach this machine's disk" in proc.stderr
    assert "--out=" in proc.stderr and "sources.stackoverflow[0]=" in proc.stderr
    assert not (tmp_path / "so").exists()


def test_paths_with_glob_characters_are_refused(tmp_path):
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", str(tmp_path / "runs[1]"), check=False)
    assert proc.returncode != 0 and "which Beam reads as a pattern" in proc.stderr
