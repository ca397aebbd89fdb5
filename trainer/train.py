"""The training loop: a causal-masking model on a version's shards (paper §2.1, §4).

    code-corpus run --config c.yaml --stages train --dataset-version v0001

Per update: a batch of packed, causal-masked rows (trainer/data.py); cross-entropy
on every target token (mask sentinels and padding excluded); Adam with betas
(0.9, 0.98), gradients clipped to norm 1.0, and fairseq's polynomial-decay schedule
(linear warm-up, then linear decay to `lr_end`) (§4). On CUDA the forward pass runs
under bf16 autocast with fp32 weights; on CPU everything is fp32.

Checkpoints go to `<version>/checkpoints/step-NNNNNN/` (trainer/checkpoints.py). A
run started again on the same version resumes from the newest checkpoint and computes
the same losses it would have computed without the interruption. Per-update losses go
to `checkpoints/train_log.jsonl`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time
from typing import Callable

import torch
import torch.nn.functional as F

from schemas.config import ConfigError, TrainConfig
from tokenizer_training.tokenizer import load_tokenizer
from trainer.checkpoints import (
    CHECKPOINTS_DIR,
    LOG_FILE,
    StepLog,
    check_resumable,
    list_checkpoints,
    load_state,
    read_log,
    remove_partial_checkpoints,
    save_checkpoint,
)
from trainer.data import IGNORE_INDEX, Cursor, MaskedSequences, ShardDocuments, next_batch
from trainer.masking import SpecialIds
from trainer.model import build_model, count_parameters, gpu_peak_flops, load_model, model_config, train_flops_per_token

log = logging.getLogger(__name__)

ADAM_BETAS = (0.9, 0.98)  # §4
GRAD_CLIP = 1.0  # §4


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

    remove_partial_checkpoints(checkpoints_dir)
    existing = list_checkpoints(checkpoints_dir)
    state = None
    if existing:
        check_resumable(existing[-1], cfg)
        model = load_model(existing[-1])
        state = load_state(existing[-1])
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
