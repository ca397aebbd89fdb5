"""Bad configuration fails at once with a message that says what to change."""

from __future__ import annotations

import os

import pytest

from pipeline.options import make_pipeline_options
from pipeline.run import parse_stages
from schemas.config import ConfigError, load_config
from schemas.records import Rejected, RepoFile
from tests.conftest import EXAMPLES, SAMPLE_CONFIG, run_cli
from transforms.cleaning.license import LicenseFilterFn


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


def test_license_allow_is_matched_case_insensitively_and_recorded_canonically(tmp_path):
    config = load_config(write(tmp_path, "name: x\nlicense:\n  allow: [mit, APACHE-2.0, bsd-3-clause, MIT, LicenseRef-Ours]\n"))
    assert config.license.allow == ("MIT", "Apache-2.0", "BSD-3-Clause", "LicenseRef-Ours")
    assert config.to_dict()["license"]["allow"] == ["MIT", "Apache-2.0", "BSD-3-Clause", "LicenseRef-Ours"]  # the manifest's
    allowed = LicenseFilterFn(config.license.allow)
    file = RepoFile("i", "local", "r", "a.py", None, "mit AND LicenseRef-OURS", None, 1, "x")  # as data may spell them
    assert allowed(file) is file
    assert isinstance(allowed(file.replace(license="GPL-3.0-only")), Rejected)


def test_the_crawls_license_lists_are_matched_the_same_way(tmp_path):
    config = load_config(
        write(tmp_path, "name: x\nsources:\n  github:\n    licenses: [mit]\n  bigquery:\n    licenses: [Bsd-2-Clause]\n")
    )
    assert config.sources.github.licenses == ("MIT",) and config.sources.bigquery.licenses == ("BSD-2-Clause",)


@pytest.mark.parametrize(
    "allow, message",
    [
        ("[]", r"license.allow is empty, so every file would be rejected"),
        ('["MIT OR Apache-2.0"]', r"license.allow\[0\]: 'MIT OR Apache-2.0' is not an SPDX id"),
        ('[""]', r"license.allow\[0\]: '' is not an SPDX id"),
    ],
)
def test_an_allow_list_that_cannot_mean_what_it_says_is_refused(tmp_path, allow, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, f"name: x\nlicense:\n  allow: {allow}\n"))


@pytest.mark.parametrize(
    "out", ["s3://bucket/datasets", "hf://datasets/me/corpus", "azfs://account/container/x", "file:///tmp/x"]
)
def test_out_on_a_store_versions_cannot_be_written_to_is_refused_before_any_work(out):
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", out, check=False)
    assert proc.returncode == 2
    scheme = out.split("://")[0]
    assert f"error: --out: {scheme}:// is not supported for writing versions (a local folder or gs://bucket/path)" in proc.stderr
    assert "stage corpus: starting" not in proc.stderr and "Traceback" not in proc.stderr
