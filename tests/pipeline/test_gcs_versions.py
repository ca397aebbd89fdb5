"""`--out gs://...`: versions on Cloud Storage, through the CLI as a user runs it.

The bucket is a Cloud Storage JSON API server on 127.0.0.1; Beam's own GCS filesystem
and google-cloud-storage talk to it as they would to the real service.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from infra import storage
from infra.version import RUN_INFO, read_manifest
from pipeline.diff import diff_versions
from schemas.records import RepoFile
from tests.conftest import SAMPLE_CONFIG, copy_code_sample, run_cli
from tests.trainer.conftest import ONE_THREAD_ENV, write_version

pytestmark = pytest.mark.slow  # builds versions on a Cloud Storage server


FIRST_STAGES = "corpus,tokenizer"


def test_sample_on_cloud_storage_is_byte_identical_to_a_local_build(sample_version, gcs):
    proc = run_cli("run", "--config", SAMPLE_CONFIG, "--out", gcs)
    local, remote = str(sample_version()[0]), f"{gcs}/sample/v0001"
    assert f"written to {remote}" in proc.stdout

    assert storage.list_children(f"{gcs}/sample") == ["v0001"]  # no staging left behind
    names = storage.list_files(remote)
    assert names == storage.list_files(local)
    assert {"manifest.json", "report.html", "dedup/bloom.bin", "tokenizer/tokenizer.json"} <= set(names)
    assert any(n.startswith("shards/train-") for n in names) and not any(n.startswith("_") for n in names)
    for name in names:
        if name != RUN_INFO:
            assert storage.read_bytes(f"{remote}/{name}") == storage.read_bytes(os.path.join(local, name)), name
    for rel, info in read_manifest(remote)["files"].items():
        assert hashlib.sha256(storage.read_bytes(f"{remote}/{rel}")).hexdigest() == info["sha256"], rel

    shown = run_cli("inspect", remote).stdout
    assert "sample" in shown and "v0001" in shown and "license" in shown


def test_incremental_build_later_stages_and_diff_on_cloud_storage(tmp_path, gcs):
    config = copy_code_sample(tmp_path)
    v1, v2 = f"{gcs}/sample/v0001", f"{gcs}/sample/v0002"
    run_cli("run", "--config", config, "--out", gcs, "--stages", FIRST_STAGES)
    reached_dedup = read_manifest(v1)["counts"]["dedup"]["in"]
    (tmp_path / "examples" / "repos" / "textkit" / "textkit" / "numbers.py").write_text("def triple(v):\n    return 3 * v\n")

    run_cli("run", "--config", config, "--out", gcs, "--stages", FIRST_STAGES, "--previous", v1, "--reuse-tokenizer")
    manifest = read_manifest(v2)
    assert manifest["parents"] == ["sample/v0001"]
    assert manifest["counts"]["dedup"]["rejected"]["dedup-previous-version"] == reached_dedup
    assert manifest["counts"]["dedup"]["kept"] == 1
    assert manifest["tokenizer"]["hash"] == read_manifest(v1)["tokenizer"]["hash"]
    assert manifest["tokenizer"]["reused_from"]["path"] == v1

    run_cli("run", "--config", config, "--out", gcs, "--stages", "binarize", "--dataset-version", "v0002")
    manifest = read_manifest(v2)
    assert manifest["stages"] == ["corpus", "tokenizer", "binarize"]
    assert manifest["shards"]["splits"]["train"]["documents"] > 0
    assert not any(n.startswith(".") for n in storage.list_children(v2))  # the stage run's staging is gone
    for rel, info in manifest["files"].items():
        assert hashlib.sha256(storage.read_bytes(f"{v2}/{rel}")).hexdigest() == info["sha256"], rel
    assert "Tokens per shard" in storage.read_bytes(f"{v2}/report.html").decode()

    added = RepoFile.make_id("local", "octo-org/textkit", "textkit/numbers.py", None)
    assert diff_versions(v1, v2)["documents"]["added"] == [added]
    assert f"+ {added}" in run_cli("diff", v1, v2).stdout


TRAIN_CONFIG = """\
name: counting
train:
  preset: tiny
  steps: {steps}
  batch_size: 4
  context_length: 32
  warmup_steps: 2
  checkpoint_every: 5
  keep_checkpoints: 1
  eval_batches: 1
  log_every: 5
  device: cpu
"""


def test_train_stage_on_a_cloud_version_uploads_checkpoints_and_resumes_from_them(tmp_path, gcs, monkeypatch):
    from trainer.checkpoints import LOG_FILE, STATE_FILE  # torch: only this test loads it

    for name, value in ONE_THREAD_ENV.items():
        monkeypatch.setenv(name, value)
    version = f"{gcs}/counting/v0001"
    storage.copy_tree(write_version(str(tmp_path), train_docs=40, valid_docs=8), version)
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_CONFIG.format(steps=10))
    train = ["run", "--config", str(config), "--out", gcs, "--stages", "train", "--dataset-version", "v0001"]

    run_cli(*train)
    manifest = read_manifest(version)
    assert storage.list_children(f"{version}/checkpoints") == ["step-000010", LOG_FILE]  # keep_checkpoints: 1
    assert manifest["train"]["steps"] == 10 and manifest["train"]["checkpoint"] == "checkpoints/step-000010"
    assert f"checkpoints/step-000010/{STATE_FILE}" in manifest["files"]
    for rel, info in manifest["files"].items():
        assert hashlib.sha256(storage.read_bytes(f"{version}/{rel}")).hexdigest() == info["sha256"], rel
    log = storage.read_bytes(f"{version}/checkpoints/{LOG_FILE}")
    generated = run_cli("generate", version, "--text", "04 05", "--max-new-tokens", "4").stdout
    assert generated.startswith("04 05") and len(generated.split()) > 2  # the newest checkpoint, read from the bucket

    # An upload cut short leaves a checkpoint without its state file: it is not resumed from, and goes.
    storage.write_bytes(f"{version}/checkpoints/step-000099/config.json", b"{}")
    run_cli(*train)
    assert storage.list_children(f"{version}/checkpoints") == ["step-000010", LOG_FILE]
    assert storage.read_bytes(f"{version}/checkpoints/{LOG_FILE}") == log  # resumed at step 10: nothing retrained

    config.write_text(TRAIN_CONFIG.format(steps=15))
    proc = run_cli(*train, check=False)
    assert proc.returncode != 0 and f"{version}/checkpoints/step-000010 was trained with other settings" in proc.stderr
