"""The stage adapters: what `run` calls for each stage, and how each result enters the manifest.

Each adapter takes the run's StageContext, calls its stage with plain parameters
(config section, directories, seed, pipeline options), checks the stage against what
the manifest already records, and returns the manifest part it adds: "files" and
"counts" are merged with what earlier stages recorded, other keys are set.

    corpus     pipeline/corpus.py run_corpus                      documents/, rejected/, snapshot/
    tokenizer  tokenizer_training/train_tokenizer.py make_tokenizer  tokenizer/
    binarize   tokenizer_training/binarize.py binarize_version       shards/
    train      trainer/train.py train                              checkpoints/
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Callable

from apache_beam.options.pipeline_options import PipelineOptions

from infra import storage
from infra.writers import file_info
from pipeline.corpus import run_corpus
from schemas import stage_names
from schemas.config import ConfigError, PipelineConfig
from schemas.errors import EmptyCorpusError
from tokenizer_training.binarize import SHARDS_DIR, binarize_version
from tokenizer_training.tokenizer import TOKENIZER_DIR
from tokenizer_training.train_tokenizer import EmptySampleError, make_tokenizer


@dataclasses.dataclass
class StageContext:
    """What a stage adapter gets: config, where to read earlier outputs, where to write."""

    config: PipelineConfig
    input_dir: str  # the version as it stands (earlier stages' outputs)
    output_dir: str  # where this run writes; moved into the version on success
    pipeline_options: PipelineOptions
    manifest: dict  # the manifest so far; adapters read earlier stages' entries


StageRunner = Callable[[StageContext], dict]


def rejections(manifest: dict, top: int = 5) -> str:
    """The corpus's rejections in one line: how many, and the commonest (stage, reason) pairs."""
    counts = manifest.get("counts", {})
    found = [(n, f"{stage}/{reason}") for stage, entry in counts.items() for reason, n in entry.get("rejected", {}).items()]
    found.sort(key=lambda x: (-x[0], x[1]))
    shown = ", ".join(f"{what} {n}" for n, what in found[:top])
    return f"{sum(n for n, _ in found)} records were rejected ({shown or 'none'})"


def run_tokenizer_stage(ctx: StageContext) -> dict:
    config = ctx.config.tokenizer
    reuse_from = ctx.config.resolve(config.reuse_from) if config.reuse_from else None
    try:
        entry = make_tokenizer(ctx.input_dir, ctx.output_dir, config, ctx.config.seed, reuse_from, ctx.manifest)
    except EmptySampleError:
        if ctx.manifest.get("documents", 1):
            raise
        said = rejections(ctx.manifest)
        raise EmptyCorpusError(f"tokenizer: the corpus kept no document, so there is nothing to train on: {said}") from None
    drop_file_entries(ctx.manifest, TOKENIZER_DIR + "/")
    return {"tokenizer": entry, "files": file_entries(ctx.output_dir, storage.join(ctx.output_dir, TOKENIZER_DIR))}


def run_binarize_stage(ctx: StageContext) -> dict:
    added = binarize_version(
        ctx.input_dir, ctx.output_dir, ctx.config.binarize, ctx.config.seed, ctx.pipeline_options, ctx.manifest
    )
    read, documents = added["counts"][stage_names.BINARIZE]["in"], ctx.manifest.get("documents")
    if documents is not None and read != documents:
        raise RuntimeError(f"binarize read {read} documents but documents/ holds {documents}")
    drop_file_entries(ctx.manifest, SHARDS_DIR + "/")
    return added


def run_train_stage(ctx: StageContext) -> dict:
    """Train on the version; checkpoints go straight into `<version>/checkpoints/`.

    Not into the run's staging directory: a killed run is resumed by running the stage
    again, and each checkpoint appears whole or not at all. torch and the shard reader
    need real files, so a version on cloud storage is trained from a local copy, and
    each checkpoint is uploaded as soon as it is saved. torch and transformers (the
    `train` extra) are imported only when this stage runs.
    """
    try:
        from trainer.checkpoints import CHECKPOINTS_DIR, upload_checkpoints
        from trainer.train import train
    except ImportError as e:
        raise ImportError(f"the train stage needs the train extra ({e}): pip install -e '.[train]'") from None

    cfg = ctx.config.train
    with storage.LocalCopy(ctx.input_dir, fetch=(SHARDS_DIR, TOKENIZER_DIR, CHECKPOINTS_DIR)) as local:
        checkpoints_dir = os.path.join(local, CHECKPOINTS_DIR)
        remote = storage.join(ctx.input_dir, CHECKPOINTS_DIR)
        upload = None if local == ctx.input_dir else lambda: upload_checkpoints(checkpoints_dir, remote)
        try:
            result = train(cfg, local, checkpoints_dir, upload)
        except ConfigError as e:  # name the version's own paths, not the local copy's
            raise ConfigError(str(e).replace(local, ctx.input_dir)) from None
        if upload:
            upload()  # also when no step was left to train: the bucket then drops what is not a checkpoint
        files = file_entries(local, result.checkpoint)
    return {
        "train": {
            "preset": cfg.preset,
            "parameters": result.parameters,
            "steps": result.step,
            "checkpoint": os.path.relpath(result.checkpoint, local),
            "final_loss": result.final_loss,
            "valid_loss": result.valid_loss,
        },
        "files": files,
    }


# Stage name → adapter, in the order of schemas.config.STAGES.
STAGE_RUNNERS: dict[str, StageRunner] = {
    stage_names.CORPUS: run_corpus,
    stage_names.TOKENIZER: run_tokenizer_stage,
    stage_names.BINARIZE: run_binarize_stage,
    stage_names.TRAIN: run_train_stage,
}


def file_entries(version_dir: str, directory: str) -> dict:
    """Manifest file entries (sha256, md5, bytes) of every file under `directory`, keyed by path in the version."""
    entries = {}
    for name in storage.list_files(directory):
        path = storage.join(directory, name)
        sha256, md5, size = hashlib.sha256(), hashlib.md5(), 0
        with storage.open_file(path) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha256.update(block)
                md5.update(block)
                size += len(block)
        info = file_info(version_dir, path, sha256.hexdigest(), size, md5=md5.hexdigest())
        entries[info.pop("path")] = info
    return entries


def drop_file_entries(manifest: dict, prefix: str) -> None:
    """A rerun replaces the whole directory, so earlier file entries under it go."""
    for path in [p for p in manifest.get("files", {}) if p.startswith(prefix)]:
        del manifest["files"][path]
