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


@dataclasses.dataclass
class TrainingData:
    """What a run reads from a version: its tokenizer, the special ids, the train and valid shards."""

    tokenizer: object
    ids: SpecialIds
    train: ShardDocuments
    valid: ShardDocuments

    @classmethod
    def open(cls, version_dir: str) -> TrainingData:
        tokenizer = load_tokenizer(version_dir)
        ids = SpecialIds.from_tokenizer(tokenizer)
        train_docs = ShardDocuments(version_dir, "train")
        if not len(train_docs):
            raise ConfigError(f"train: {version_dir} has no train shards; run the binarize stage first")
        return cls(tokenizer, ids, train_docs, ShardDocuments(version_dir, "valid"))


@dataclasses.dataclass
class Trainee:
    """The model, optimizer and schedule of a run, the step it starts after, and the checkpoint it resumed."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    cursor: Cursor
    start: int
    resumed: str | None


def prepare(cfg: TrainConfig, checkpoints_dir: str, data: TrainingData, device: torch.device) -> Trainee:
    """A new model, or the newest checkpoint's model, optimizer, schedule, data cursor and RNG state."""
    remove_partial_checkpoints(checkpoints_dir)
    existing = list_checkpoints(checkpoints_dir)
    resumed = existing[-1] if existing else None
    state = None
    if resumed:
        check_resumable(resumed, cfg)
        model = load_model(resumed)
        state = load_state(resumed)
        log.info("resuming from %s", resumed)
    else:
        config = model_config(cfg.preset, len(data.tokenizer), data.ids, cfg.context_length)
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
    trainee = Trainee(model, optimizer, scheduler, Cursor(), 0, resumed)
    if state is not None:
        restore_state(trainee, state, device)
    else:
        torch.manual_seed(cfg.seed)  # dropout
    return trainee


def restore_state(trainee: Trainee, state: dict, device: torch.device) -> None:
    """Where a checkpoint left off: optimizer, schedule, data cursor, step and RNG."""
    trainee.optimizer.load_state_dict(state["optimizer"])
    trainee.scheduler.load_state_dict(state["scheduler"])
    trainee.cursor, trainee.start = Cursor(**state["cursor"]), state["step"]
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def peak_flops(cfg: TrainConfig, device: torch.device) -> float | None:
    """The device's peak FLOP/s for MFU: from the config, or known for the GPU; None on CPU or unknown."""
    peak = cfg.gpu_peak_tflops * 1e12 if cfg.gpu_peak_tflops else None
    if device.type == "cuda" and peak is None:
        peak = gpu_peak_flops(torch.cuda.get_device_name(device))
        if peak is None:
            log.warning("MFU not logged: unknown GPU %s; set train.gpu_peak_tflops", torch.cuda.get_device_name(device))
    return peak


class Throughput:
    """Tokens per second of each logging interval, and MFU where the device's peak is known.

    The run's rate leaves out its first interval (start-up costs) and the time spent on checkpoints.
    """

    def __init__(self, device: torch.device, start: int, log_every: int, flops_per_token: float, peak: float | None):
        self.start, self.log_every, self.flops_per_token, self.peak = start, log_every, flops_per_token, peak
        self.interval_tokens = torch.zeros((), dtype=torch.long, device=device)
        self.measured_tokens, self.measured_seconds, self.mfu = 0, 0.0, None
        self.tick = time.perf_counter()

    def add(self, tokens: torch.Tensor) -> None:
        self.interval_tokens += tokens

    def measure(self, step: int) -> tuple[float, dict]:
        """(tokens per second, the figures the step log records) of the interval ending at `step`."""
        interval = int(self.interval_tokens.item())  # waits for the device
        now = time.perf_counter()
        rate = interval / (now - self.tick)
        if step - self.start > self.log_every:  # the first interval includes start-up costs
            self.measured_tokens += interval
            self.measured_seconds += now - self.tick
        extra = {"tokens_per_s": round(rate, 1)}
        if self.peak:
            self.mfu = rate * self.flops_per_token / self.peak
            extra["mfu"] = round(self.mfu, 4)
        return rate, extra

    def restart(self) -> None:
        self.interval_tokens.zero_()
        self.tick = time.perf_counter()

    @contextlib.contextmanager
    def paused(self):
        """Time spent inside (a checkpoint) is not training time."""
        pause = time.perf_counter()
        yield
        self.tick += time.perf_counter() - pause

    @property
    def tokens_per_second(self) -> float:
        return self.measured_tokens / self.measured_seconds if self.measured_seconds else 0.0


def update(trainee: Trainee, seqs: MaskedSequences, pad: int, cfg: TrainConfig, device: torch.device):
    """One optimizer step on the next batch; (loss, non-padding tokens, the learning rate it used)."""
    inputs, labels = (torch.from_numpy(a).to(device, non_blocking=True) for a in next_batch(seqs, cfg.batch_size))
    loss, _ = masked_lm_loss(trainee.model, inputs, labels, device)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), GRAD_CLIP)
    lr = trainee.scheduler.get_last_lr()[0]
    trainee.optimizer.step()
    trainee.scheduler.step()
    trainee.optimizer.zero_grad(set_to_none=True)
    return loss, (inputs != pad).sum(), lr


def log_interval(step: int, lr: float, steplog: StepLog, meter: Throughput) -> None:
    rate, extra = meter.measure(step)
    steplog.write(**extra)
    mfu = f" MFU {meter.mfu:.1%}" if meter.peak else ""
    log.info("step %d loss %.4f lr %.3g tokens/s %.0f%s", step, steplog.last_loss, lr, rate, mfu)
    meter.restart()


def save_and_evaluate(
    step: int, cfg: TrainConfig, checkpoints_dir: str, trainee: Trainee, data: TrainingData, seqs, steplog, device
) -> str:
    """Save a checkpoint (the step log first) and, with a valid split, log its loss; the checkpoint's directory."""
    steplog.write()
    checkpoint = save_checkpoint(
        checkpoints_dir,
        step,
        trainee.model,
        data.tokenizer,
        trainee.optimizer,
        trainee.scheduler,
        seqs.cursor,
        cfg,
        cfg.keep_checkpoints,
    )
    if cfg.eval_batches and len(data.valid):
        valid_loss = evaluate(trainee.model, data.valid, data.ids, cfg, device)
        steplog.append([{"step": step, "valid_loss": valid_loss}])
        log.info("step %d valid loss %.4f", step, valid_loss)
    return checkpoint


def train(
    cfg: TrainConfig, version_dir: str, checkpoints_dir: str | None = None, on_checkpoint: Callable[[], None] | None = None
) -> TrainResult:
    """Train on `version_dir`'s shards, resuming from the newest checkpoint in `checkpoints_dir`.

    `on_checkpoint` runs after each checkpoint is saved (the train stage uploads it from there).
    """
    checkpoints_dir = checkpoints_dir or os.path.join(version_dir, CHECKPOINTS_DIR)
    os.makedirs(checkpoints_dir, exist_ok=True)
    device = pick_device(cfg.device)
    data = TrainingData.open(version_dir)
    trainee = prepare(cfg, checkpoints_dir, data, device)
    n_params = count_parameters(trainee.model)
    flops_per_token = train_flops_per_token(trainee.model.config, n_params, cfg.context_length)
    peak = peak_flops(cfg, device)
    log.info(
        "training %s (%d parameters) on %s from step %d to %d; %d train documents (%d tokens)",
        cfg.preset, n_params, device, trainee.start, cfg.steps, len(data.train), data.train.num_tokens(),
    )  # fmt: skip

    seqs = MaskedSequences(data.train, data.ids, cfg.context_length, cfg.seed, shuffle=True, cursor=trainee.cursor)
    steplog = StepLog(os.path.join(checkpoints_dir, LOG_FILE), trainee.start)
    meter = Throughput(device, trainee.start, cfg.log_every, flops_per_token, peak)
    checkpoint = trainee.resumed
    for step in range(trainee.start + 1, cfg.steps + 1):
        loss, step_tokens, lr = update(trainee, seqs, data.ids.pad, cfg, device)
        steplog.add(step, loss, step_tokens, lr)
        meter.add(step_tokens)
        if step % cfg.log_every == 0 or step == cfg.steps:
            log_interval(step, lr, steplog, meter)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            with meter.paused():
                checkpoint = save_and_evaluate(step, cfg, checkpoints_dir, trainee, data, seqs, steplog, device)
                if on_checkpoint:
                    on_checkpoint()
    return summarize(cfg, checkpoints_dir, checkpoint, trainee.start, n_params, meter)


def summarize(
    cfg: TrainConfig, checkpoints_dir: str, checkpoint: str, start: int, n_params: int, meter: Throughput
) -> TrainResult:
    """The run's result, its losses and tokens read back from the step log (all runs together)."""
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
        tokens_per_second=meter.tokens_per_second,
        mfu=meter.mfu,
    )
