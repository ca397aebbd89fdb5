"""The training loop: a causal-masking model on a version's shards (paper §2.1, §4).

    code-corpus run --config c.yaml --stages train --version v0001

Per update: a batch of packed, causal-masked rows (trainer/data.py); cross-entropy
on every target token (mask sentinels and padding excluded); Adam with betas
(0.9, 0.98), gradients clipped to norm 1.0, and fairseq's polynomial-decay schedule
(linear warm-up, then linear decay to `lr_end`) (§4). On CUDA the forward pass runs
under bf16 autocast with fp32 weights; on CPU everything is fp32.

Checkpoints go to `<version>/checkpoints/step-NNNNNN/`, each written whole under a
temporary name and then renamed, so the directory only ever holds complete ones:
`save_pretrained` of the model and the tokenizer together (so
`AutoModelForCausalLM.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)`
work as on the InCoder model card), plus `trainer_state.pt` (optimizer, scheduler,
step, data cursor, RNG states) and `train_config.json`. A run started again on the
same version resumes from the newest checkpoint and computes the same losses it
would have computed without the interruption. Per-update losses go to
`checkpoints/train_log.jsonl`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import time
from typing import Callable

import torch
import torch.nn.functional as F
from transformers import XGLMForCausalLM

from infra import storage
from infra.writers import file_info, write_json
from schemas.config import ConfigError, TrainConfig
from tokenizer_training.binarize import SHARDS_DIR
from tokenizer_training.tokenizer import TOKENIZER_DIR, load_tokenizer
from trainer.data import IGNORE_INDEX, Cursor, MaskedSequences, ShardDocuments, next_batch
from trainer.masking import SpecialIds
from trainer.model import build_model, count_parameters, gpu_peak_flops, model_config, train_flops_per_token

log = logging.getLogger(__name__)

ADAM_BETAS = (0.9, 0.98)  # §4
GRAD_CLIP = 1.0  # §4
CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "train_config.json"
LOG_FILE = "train_log.jsonl"
CHECKPOINT_NAME = re.compile(r"^step-(\d{6,})$")
# Settings a resumed run may change: none of them changes what is computed.
RESUMABLE_CHANGES = {"checkpoint_every", "keep_checkpoints", "log_every", "eval_batches", "device", "gpu_peak_tflops"}


@dataclasses.dataclass
class TrainResult:
    checkpoint: str  # the last checkpoint directory
    step: int
    resumed_from: int  # the step the run started after (0: from scratch)
    parameters: int
    final_loss: float  # training loss of the last update
    valid_loss: float | None  # at the last checkpoint, when the version has a valid split
    tokens: int  # non-padding tokens trained on, all runs together
    tokens_per_second: float  # this run, after its first logging interval
    mfu: float | None  # model FLOPs utilisation on a GPU whose peak is known


def polynomial_decay(step: int, warmup: int, total: int, end_ratio: float) -> float:
    """Multiplier of the peak rate for update `step` (0-based): fairseq's polynomial_decay, power 1.

    1. warm-up: rises linearly, reaching 1 at update `warmup`;
    2. decay: falls linearly to `end_ratio` at update `total`.
    """
    if step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    return end_ratio + (1.0 - end_ratio) * max(0.0, 1.0 - (step - warmup) / (total - warmup))


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no CUDA device is available; set train.device: cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (weights stay fp32); plain fp32 on CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def masked_lm_loss(model, inputs: torch.Tensor, labels: torch.Tensor, device: torch.device):
    """(mean loss, target count): position t predicts labels[:, t + 1]."""
    with autocast(device):
        logits = model(input_ids=inputs, use_cache=False).logits  # (B, T, V)
    # Shift the labels, not the logits: slicing (B, T, V) would copy the largest tensor of the step.
    targets = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1)  # (B, T)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX)
    return loss, (targets != IGNORE_INDEX).sum()


# ---------------------------------------------------------------------------- checkpoints


def list_checkpoints(directory: str) -> list[str]:
    """Complete checkpoints (those with their state file) under `directory`, oldest first; local or cloud."""
    found = [(int(m.group(1)), e) for e in storage.list_children(directory) if (m := CHECKPOINT_NAME.match(e))]
    paths = [storage.join(directory, e) for _, e in sorted(found)]
    return [p for p in paths if storage.exists(storage.join(p, STATE_FILE))]


def save_checkpoint(directory, step, model, tokenizer, optimizer, scheduler, cursor, cfg, keep) -> str:
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


def check_resumable(checkpoint: str, cfg: TrainConfig) -> None:
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


# ---------------------------------------------------------------------------- the loop


def evaluate(model, docs: ShardDocuments, ids: SpecialIds, cfg: TrainConfig, device: torch.device) -> float:
    """Mean loss per target token over the first `eval_batches` batches of the split, in file order."""
    seqs = MaskedSequences(docs, ids, cfg.context_length, cfg.seed, shuffle=False, cursor=Cursor())
    total, count = torch.zeros((), device=device), torch.zeros((), device=device)
    model.eval()
    with torch.no_grad():
        for _ in range(cfg.eval_batches):
            inputs, labels = (torch.from_numpy(a).to(device) for a in next_batch(seqs, cfg.batch_size))
            loss, n = masked_lm_loss(model, inputs, labels, device)
            total += loss * n
            count += n
    model.train()
    return float((total / count.clamp(min=1)).item())


def train(
    cfg: TrainConfig, version_dir: str, checkpoints_dir: str | None = None, on_checkpoint: Callable[[], None] | None = None
) -> TrainResult:
    """Train on `version_dir`'s shards, resuming from the newest checkpoint in `checkpoints_dir`.

    `on_checkpoint` runs after each checkpoint is saved (the train stage uploads it from there).
    """
    checkpoints_dir = checkpoints_dir or os.path.join(version_dir, CHECKPOINTS_DIR)
    os.makedirs(checkpoints_dir, exist_ok=True)
    device = pick_device(cfg.device)
    tokenizer = load_tokenizer(version_dir)
    ids = SpecialIds.from_tokenizer(tokenizer)
    train_docs = ShardDocuments(version_dir, "train")
    if not len(train_docs):
        raise ConfigError(f"train: {version_dir} has no train shards; run the binarize stage first")
    valid_docs = ShardDocuments(version_dir, "valid")

    for entry in os.listdir(checkpoints_dir):  # half-written checkpoints of a killed run
        if entry.endswith(".partial"):
            shutil.rmtree(os.path.join(checkpoints_dir, entry))
    existing = list_checkpoints(checkpoints_dir)
    state = None
    if existing:
        check_resumable(existing[-1], cfg)
        model = XGLMForCausalLM.from_pretrained(existing[-1], dtype=torch.float32)
        state = torch.load(os.path.join(existing[-1], STATE_FILE), map_location="cpu")
        log.info("resuming from %s", existing[-1])
    else:
        config = model_config(cfg.preset, len(tokenizer), ids, cfg.context_length)
        if cfg.dropout is not None:
            config.dropout = config.attention_dropout = cfg.dropout
        model = build_model(config, cfg.seed)
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=ADAM_BETAS, weight_decay=cfg.weight_decay, fused=device.type == "cuda"
    )
    end_ratio = cfg.lr_end / cfg.lr
    schedule = functools.partial(polynomial_decay, warmup=cfg.warmup_steps, total=cfg.steps, end_ratio=end_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    cursor, start = Cursor(), 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        cursor, start = Cursor(**state["cursor"]), state["step"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    else:
        torch.manual_seed(cfg.seed)  # dropout

    n_params = count_parameters(model)
    flops_per_token = train_flops_per_token(model.config, n_params, cfg.context_length)
    peak = cfg.gpu_peak_tflops * 1e12 if cfg.gpu_peak_tflops else None
    if device.type == "cuda" and peak is None:
        peak = gpu_peak_flops(torch.cuda.get_device_name(device))
        if peak is None:
            log.warning("MFU not logged: unknown GPU %s; set train.gpu_peak_tflops", torch.cuda.get_device_name(device))
    log.info(
        "training %s (%d parameters) on %s from step %d to %d; %d train documents (%d tokens)",
        cfg.preset, n_params, device, start, cfg.steps, len(train_docs), train_docs.num_tokens(),
    )  # fmt: skip

    seqs = MaskedSequences(train_docs, ids, cfg.context_length, cfg.seed, shuffle=True, cursor=cursor)
    steplog = StepLog(os.path.join(checkpoints_dir, LOG_FILE), start)
    interval_tokens = torch.zeros((), dtype=torch.long, device=device)
    measured_tokens, measured_seconds, mfu = 0, 0.0, None
    tick = time.perf_counter()
    checkpoint, valid_loss = existing[-1] if existing else None, None
    for step in range(start + 1, cfg.steps + 1):
        inputs, labels = (torch.from_numpy(a).to(device, non_blocking=True) for a in next_batch(seqs, cfg.batch_size))
        loss, _ = masked_lm_loss(model, inputs, labels, device)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step_tokens = (inputs != ids.pad).sum()
        steplog.add(step, loss, step_tokens, lr)
        interval_tokens += step_tokens

        if step % cfg.log_every == 0 or step == cfg.steps:
            interval = int(interval_tokens.item())  # waits for the device
            now = time.perf_counter()
            rate = interval / (now - tick)
            if step - start > cfg.log_every:  # the first interval includes start-up costs
                measured_tokens += interval
                measured_seconds += now - tick
            extra = {"tokens_per_s": round(rate, 1)}
            if peak:
                mfu = rate * flops_per_token / peak
                extra["mfu"] = round(mfu, 4)
            steplog.write(**extra)
            log.info(
                "step %d loss %.4f lr %.3g tokens/s %.0f%s",
                step, steplog.last_loss, lr, rate, f" MFU {mfu:.1%}" if peak else "",
            )  # fmt: skip
            interval_tokens.zero_()
            tick = time.perf_counter()

        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            pause = time.perf_counter()
            steplog.write()
            checkpoint = save_checkpoint(
                checkpoints_dir, step, model, tokenizer, optimizer, scheduler, seqs.cursor, cfg, cfg.keep_checkpoints
            )
            if cfg.eval_batches and len(valid_docs):
                valid_loss = evaluate(model, valid_docs, ids, cfg, device)
                steplog.append([{"step": step, "valid_loss": valid_loss}])
                log.info("step %d valid loss %.4f", step, valid_loss)
            if on_checkpoint:
                on_checkpoint()
            tick += time.perf_counter() - pause  # checkpoint time is not training time

    history = read_log(os.path.join(checkpoints_dir, LOG_FILE))
    losses = [r["loss"] for r in history if "loss" in r]
    valids = [r["valid_loss"] for r in history if "valid_loss" in r]
    return TrainResult(
        checkpoint=checkpoint,
        step=cfg.steps,
        resumed_from=start,
        parameters=n_params,
        final_loss=losses[-1] if losses else float("nan"),
        valid_loss=valids[-1] if valids else None,
        tokens=sum(r.get("tokens", 0) for r in history),
        tokens_per_second=measured_tokens / measured_seconds if measured_seconds else 0.0,
        mfu=mfu,
    )


def read_log(path: str) -> list[dict]:
    """The records of a train_log.jsonl."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ---------------------------------------------------------------------------- the pipeline stage


def run_train_stage(ctx) -> dict:
    """The `train` stage: train on the version, return its manifest entries.

    Checkpoints are written straight into the version (`<version>/checkpoints/`),
    not into the run's staging directory, so a killed run can be resumed by running
    the stage again; each checkpoint appears whole or not at all.
    """
    cfg = ctx.config.train
    # torch and the shard reader need real files: a version on cloud storage is trained from a local
    # copy, and each checkpoint is uploaded as soon as it is saved, so a killed run resumes from it.
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
        files = {}
        for name in sorted(os.listdir(result.checkpoint)):
            path = os.path.join(result.checkpoint, name)
            info = file_info(local, path, _sha256(path), os.path.getsize(path))
            files[info.pop("path")] = info
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


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
