"""The model: the architecture InCoder ships in `transformers` (XGLM), in named sizes.

XGLM is fairseq's dense decoder as InCoder trained it (paper §4, Table 8):
pre-norm blocks (`--decoder-normalize-before`), fixed sinusoidal positions
(`--decoder-learned-pos False`), input and output embeddings shared
(`--share-decoder-input-output-embed`), GELU, embeddings scaled by sqrt(d_model).
So a checkpoint saved here loads with `AutoModelForCausalLM.from_pretrained(dir)`
exactly as facebook/incoder-1B does.

Presets (schemas.config.MODEL_PRESETS): `tiny` trains in seconds on a laptop CPU;
`125m` is the GPT-3 Small shape (the benchmark's GPU size); `1.3b` and `6.7b` are
Table 8's INCODER shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from transformers import XGLMConfig

if TYPE_CHECKING:
    from transformers import XGLMForCausalLM

from schemas.config import MODEL_PRESETS
from trainer.masking import SpecialIds

POSITION_OFFSET = 2  # XGLM's sinusoidal table starts at row 2; it zeroes the row numbered pad_token_id


# Dense bf16 peak of the GPUs we know, in FLOP/s, for model FLOPs utilisation.
# Matched in order against torch.cuda.get_device_name().
GPU_PEAK_BF16 = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10", 125e12),
)


def model_config(preset: str, vocab_size: int, ids: SpecialIds, context_length: int) -> XGLMConfig:
    """The XGLM config of a preset for a tokenizer of `vocab_size` tokens."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"train.preset: unknown preset {preset!r}; choose from {sorted(MODEL_PRESETS)}")
    shape = MODEL_PRESETS[preset]
    return XGLMConfig(
        vocab_size=vocab_size,
        max_position_embeddings=max(2048, context_length),  # InCoder's context; sinusoids extend past it
        d_model=shape.d_model,
        ffn_dim=shape.ffn_dim,
        num_layers=shape.layers,
        attention_heads=shape.heads,
        activation_function="gelu",
        dropout=shape.dropout,
        attention_dropout=shape.dropout,
        activation_dropout=0.0,
        layerdrop=0.0,
        scale_embedding=True,
        tie_word_embeddings=True,
        # Only a pad id below the offset leaves every position's sinusoid intact (InCoder's is 1).
        pad_token_id=ids.pad if ids.pad < POSITION_OFFSET else None,
        bos_token_id=ids.bos,
        eos_token_id=ids.bos,  # <|endoftext|> also ends a document in left-to-right generation
        decoder_start_token_id=ids.bos,
    )


def build_model(config: XGLMConfig, seed: int) -> XGLMForCausalLM:
    """A freshly initialised model; the same seed gives the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _model_class()(config)


def load_model(checkpoint: str) -> XGLMForCausalLM:
    """A saved checkpoint's model, in float32 (the weights as trained)."""
    return _model_class().from_pretrained(checkpoint, dtype=torch.float32)


def _model_class() -> type[XGLMForCausalLM]:
    """The model's code, imported with the first model: it brings in torch.distributed and
    torch._dynamo (about 4 s of CPU), which the config, the schedule and the loss do not need."""
    from transformers import XGLMForCausalLM

    return XGLMForCausalLM


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters, the tied embedding counted once."""
    return sum(p.numel() for p in model.parameters())


def train_flops_per_token(config: XGLMConfig, n_params: int, context_length: int) -> float:
    """Training FLOPs per token: 6N for the weights plus 12·L·d·T for attention (PaLM, appendix B)."""
    return 6.0 * n_params + 12.0 * config.num_layers * config.d_model * context_length


def gpu_peak_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a known GPU, or None."""
    for needle, peak in GPU_PEAK_BF16:
        if needle in device_name:
            return peak
    return None
