"""Checkpoint I/O of the training loop: save, list, check before resuming, upload, the loss log.

A checkpoint is `<checkpoints>/step-NNNNNN/`: `save_pretrained` of the model and the
tokenizer together (so `AutoModelForCausalLM.from_pretrained(dir)` and
`AutoTokenizer.from_pretrained(dir)` work as on the InCoder model card), plus
`trainer_state.pt` (optimizer, scheduler, step, data cursor, RNG states) and
`train_config.json`. Each is written whole under a temporary name and then renamed,
and only one with its state file counts as complete, so a killed run never resumes
from half a checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import re
import shutil

import torch

from infra import storage
from infra.writers import write_json
from schemas.config import ConfigError, TrainConfig
from trainer.data import Cursor

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "train_config.json"
LOG_FILE = "train_log.jsonl"
CHECKPOINT_NAME = re.compile(r"^step-(\d{6,})$")
# Settings a resumed run may change: none of them changes what is computed.
RESUMABLE_CHANGES = {"checkpoint_every", "keep_checkpoints", "log_every", "eval_batches", "device", "gpu_peak_tflops"}


def list_checkpoints(directory: str) -> list[str]:
    """Complete checkpoints (those with their state file) under `directory`, oldest first; local or cloud."""
    found = [(int(m.group(1)), e) for e in storage.list_children(directory) if (m := CHECKPOINT_NAME.match(e))]
    paths = [storage.join(directory, e) for _, e in sorted(found)]
    return [p for p in paths if storage.exists(storage.join(p, STATE_FILE))]


def remove_partial_checkpoints(directory: str) -> None:
    """Delete the half-written checkpoints a killed run left behind."""
    for entry in os.listdir(directory):
        if entry.endswith(".partial"):
            shutil.rmtree(os.path.join(directory, entry))


def save_checkpoint(
    directory: str, step: int, model, tokenizer, optimizer, scheduler, cursor: Cursor, cfg: TrainConfig, keep: int
) -> str:
    """Write checkpoint `step` whole, then keep only the newest `keep`; return its directory."""
    final = os.path.join(directory, f"step-{step:06d}")
    partial = final + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    state = {
        "step": step,
        "cursor": cursor.to_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    torch.save(state, os.path.join(partial, STATE_FILE))
    write_json(os.path.join(partial, CONFIG_FILE), dataclasses.asdict(cfg))
    shutil.rmtree(final, ignore_errors=True)
    os.rename(partial, final)
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old)
    return final


def load_state(checkpoint: str) -> dict:
    """The trainer state saved with a checkpoint (on the CPU)."""
    return torch.load(os.path.join(checkpoint, STATE_FILE), map_location="cpu")


def check_resumable(checkpoint: str, cfg: TrainConfig) -> None:
    """Fail, naming the settings, when `cfg` would compute something else than the checkpoint's run."""
    with open(os.path.join(checkpoint, CONFIG_FILE), encoding="utf-8") as f:
        saved = json.load(f)
    current = dataclasses.asdict(cfg)
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ConfigError(
            f"train: {checkpoint} was trained with other settings ({details}); "
            f"restore them to resume, or remove {os.path.dirname(checkpoint)} to start over"
        )


def upload_checkpoints(local: str, remote: str) -> None:
    """Make `remote` hold what `local` does: new checkpoints copied with their state file
    last (a checkpoint without one is not resumed from), the training log, old ones deleted."""
    kept = {os.path.basename(c) for c in list_checkpoints(local)}
    present = storage.list_children(remote)
    uploaded = {posixpath.basename(c) for c in list_checkpoints(remote)}
    for name in sorted(kept - uploaded):
        source, target = os.path.join(local, name), storage.join(remote, name)
        for rel in sorted(storage.list_files(source), key=lambda rel: rel == STATE_FILE):
            storage.copy_file(os.path.join(source, rel), storage.join(target, rel))
    files = {n for n in os.listdir(local) if os.path.isfile(os.path.join(local, n))}
    for name in sorted(files):
        storage.copy_file(os.path.join(local, name), storage.join(remote, name))
    for name in set(present) - kept - files:
        storage.delete_tree(storage.join(remote, name))


class StepLog:
    """Per-update losses kept on the device and written to train_log.jsonl in batches.

    Reading a loss waits for the GPU, so it happens only when a batch is written.
    """

    def __init__(self, path: str, resume_step: int):
        self.path = path
        self.pending: list[tuple[int, torch.Tensor, torch.Tensor, float]] = []
        self.last_loss = float("nan")
        # Lines past the resumed checkpoint belong to the interrupted run: the new run redoes them.
        kept = []
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                kept = [line for line in f if json.loads(line)["step"] <= resume_step]
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(kept)

    def add(self, step: int, loss: torch.Tensor, tokens: torch.Tensor, lr: float) -> None:
        self.pending.append((step, loss.detach(), tokens, lr))

    def write(self, **extra) -> None:
        lines = []
        for step, loss, tokens, lr in self.pending:
            self.last_loss = float(loss.item())
            lines.append({"step": step, "loss": self.last_loss, "tokens": int(tokens.item()), "lr": lr})
        if lines:
            lines[-1].update(extra)
        self.append(lines)
        self.pending = []

    def append(self, records: list[dict]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in records)


def read_log(path: str) -> list[dict]:
    """The records of a train_log.jsonl."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]
