"""The train stage killed mid-run and started again computes exactly the losses of an unbroken run.

Both runs go through the CLI (`code-corpus run --stages train --dataset-version v0001`): the
first in a process of its own, killed by a real SIGKILL, the second in this one. Dropout
is on, so the resumed run must restore the model, the optimizer and scheduler, the data
cursor and the RNG state to match.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from subprocess import DEVNULL

import pytest

from infra.version import read_manifest
from schemas.config import ConfigError, load_config
from tests.conftest import ROOT, run_cli
from tests.trainer.conftest import ONE_THREAD_ENV, VERSION, one_thread, write_version

# torch (trainer.train, trainer.checkpoints) is imported by the tests that use it: at module
# level every test worker would import it while collecting (about 2 CPU s).

pytestmark = pytest.mark.slow  # trains a model, twice

CONFIG = """\
name: counting
train:
  preset: tiny
  steps: 50
  batch_size: 8
  context_length: 32
  lr: 0.01
  warmup_steps: 10
  dropout: 0.1
  checkpoint_every: 10
  keep_checkpoints: 2
  eval_batches: 1
  log_every: 2
  device: cpu
"""
KILL_AFTER_STEP = 25


def cli_command(config: str, out: str) -> list[str]:
    code = "import sys; from pipeline.cli import main; sys.exit(main())"
    args = ["run", "--config", config, "--out", out, "--stages", "train", "--dataset-version", VERSION]
    return [sys.executable, "-c", code, *args]


def logged_steps(path: str) -> int:
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as f:
        return max((json.loads(line)["step"] for line in f if line.strip()), default=0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    config = root / "train.yaml"
    config.write_text(CONFIG)
    version = write_version(str(root / "killed"), train_docs=200, valid_docs=20)
    reference = write_version(str(root / "reference"), train_docs=200, valid_docs=20)
    return str(config), version, reference


def test_killed_run_resumes_with_identical_losses(setup):
    from trainer.checkpoints import LOG_FILE, list_checkpoints, read_log
    from trainer.train import train

    config, version, reference = setup
    cfg = load_config(config).train
    train(cfg, reference)
    expected = read_log(os.path.join(reference, "checkpoints", LOG_FILE))

    out = os.path.dirname(os.path.dirname(version))
    env = {**os.environ, **ONE_THREAD_ENV}
    log_path = os.path.join(version, "checkpoints", LOG_FILE)
    proc = subprocess.Popen(cli_command(config, out), cwd=ROOT, env=env, stdout=DEVNULL, stderr=DEVNULL)
    deadline = time.time() + 120
    while logged_steps(log_path) < KILL_AFTER_STEP and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = logged_steps(log_path)
    survivors = list_checkpoints(os.path.join(version, "checkpoints"))
    resume_step = int(os.path.basename(survivors[-1]).split("-")[1])
    assert 20 <= resume_step <= killed_at < cfg.steps  # killed mid-run, after at least two checkpoints

    with one_thread():  # the killed process' arithmetic (ONE_THREAD_ENV), here without a second interpreter's start
        done = run_cli("run", "--config", config, "--out", out, "--stages", "train", "--dataset-version", VERSION)
    assert f"resuming from {survivors[-1]}" in done.stderr
    resumed = read_log(log_path)
    assert _losses(resumed) == _losses(expected)  # every step, bit for bit, the resumed ones included
    assert _valid(resumed) == _valid(expected)

    manifest = read_manifest(version)
    assert "train" in manifest["stages"]
    assert manifest["train"]["checkpoint"] == f"checkpoints/step-{cfg.steps:06d}"
    assert manifest["train"]["final_loss"] == _losses(expected)[cfg.steps]
    assert f"checkpoints/step-{cfg.steps:06d}/model.safetensors" in manifest["files"]
    assert len(list_checkpoints(os.path.join(version, "checkpoints"))) == cfg.keep_checkpoints


def _losses(log: list[dict]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in log if "loss" in r}


def _valid(log: list[dict]) -> dict[int, float]:
    return {r["step"]: r["valid_loss"] for r in log if "valid_loss" in r}


def test_resuming_with_other_settings_is_refused(tmp_path):
    from trainer.train import train

    version = write_version(str(tmp_path), train_docs=20, valid_docs=0)
    cfg = dataclasses.replace(load_config_text(tmp_path, CONFIG), steps=2, warmup_steps=1)
    train(cfg, version)
    with pytest.raises(ConfigError, match=r"lr: 0.01 -> 0.02.*remove"):
        train(dataclasses.replace(cfg, lr=0.02), version)
    train(dataclasses.replace(cfg, log_every=1, eval_batches=0), version)  # settings that change nothing computed


def load_config_text(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(str(path)).train
