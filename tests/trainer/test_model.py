"""The model presets: InCoder's architecture (paper §4, Table 8) and the schedule around it.

torch and transformers (trainer.model, trainer.train) are imported by the tests that use them:
at module level every test worker would import them while collecting, used or not (about 4 CPU s).
"""

from __future__ import annotations

import pytest

from trainer.masking import SpecialIds

IDS = SpecialIds(bos=0, pad=1, eom=2, masks=tuple(range(3, 259)))
INCODER_VOCAB = 50518  # facebook/incoder-1B and -6B's vocabulary size

# Building a model imports the model's code, which brings in torch.distributed and torch._dynamo
# (about 4 CPU s in each process): those tests are slow; the fast loop checks the presets' configs.
builds_a_model = pytest.mark.slow


@builds_a_model
@pytest.mark.parametrize("preset, billions", [("125m", 0.124), ("1.3b", 1.31), ("6.7b", 6.65)])
def test_preset_sizes_match_their_names(preset, billions):
    import torch

    from trainer.model import build_model, count_parameters, model_config

    config = model_config(preset, INCODER_VOCAB, IDS, 2048)
    with torch.device("meta"):  # shapes only, no memory
        model = build_model(config, seed=0)
    assert count_parameters(model) / 1e9 == pytest.approx(billions, rel=0.02)


def test_table_8_shapes():
    from trainer.model import model_config

    big = model_config("6.7b", INCODER_VOCAB, IDS, 2048)
    assert (big.d_model, big.ffn_dim, big.num_layers, big.attention_heads) == (4096, 16384, 32, 32)
    small = model_config("1.3b", INCODER_VOCAB, IDS, 2048)
    assert (small.d_model, small.ffn_dim, small.num_layers, small.attention_heads) == (2048, 8192, 24, 32)


@builds_a_model
def test_architecture_is_pre_norm_sinusoidal_and_tied():
    import torch

    from trainer.model import build_model, model_config

    model = build_model(model_config("tiny", 300, IDS, 64), seed=0)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # shared embeddings
    names = [n for n, _ in model.named_parameters()]
    assert not [n for n in names if "embed_positions" in n]  # fixed sinusoids, nothing learned
    assert "model.layer_norm.weight" in names  # the final norm that pre-norm blocks need
    assert model.config.scale_embedding and model.config.pad_token_id == IDS.pad
    # Pre-norm: with its output projections zeroed a block is the identity on the residual
    # stream (a post-norm block would still normalise it).
    layer = model.model.layers[0]
    with torch.no_grad():
        for linear in (layer.self_attn.out_proj, layer.fc2):
            linear.weight.zero_()
            linear.bias.zero_()
        x = torch.randn(1, 5, 64) * 3
        assert torch.equal(layer(x, attention_mask=None), x)


@builds_a_model
def test_same_seed_same_weights():
    import torch

    from trainer.model import build_model, model_config

    a = build_model(model_config("tiny", 300, IDS, 64), seed=3)
    b = build_model(model_config("tiny", 300, IDS, 64), seed=3)
    c = build_model(model_config("tiny", 300, IDS, 64), seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_pad_ids_past_the_position_offset_are_not_given_to_the_position_table():
    from trainer.model import model_config

    config = model_config("tiny", 300, SpecialIds(bos=0, pad=7, eom=2, masks=tuple(range(8, 264))), 64)
    assert config.pad_token_id is None


def test_flops_and_peaks():
    from trainer.model import gpu_peak_flops, model_config, train_flops_per_token

    config = model_config("1.3b", INCODER_VOCAB, IDS, 2048)
    assert train_flops_per_token(config, 1_300_000_000, 2048) == 6 * 1.3e9 + 12 * 24 * 2048 * 2048
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert gpu_peak_flops("Some Future GPU") is None


def test_polynomial_decay_warms_up_then_falls_linearly():
    from trainer.train import polynomial_decay

    lr = [polynomial_decay(s, warmup=10, total=110, end_ratio=0.1) for s in range(110)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == 1.0 and lr[10] == 1.0
    assert all(a < b for a, b in zip(lr[:10], lr[1:10]))
    assert all(a > b for a, b in zip(lr[10:], lr[11:]))
    assert lr[60] == pytest.approx(0.1 + 0.9 * 0.5)
    assert polynomial_decay(110, warmup=10, total=110, end_ratio=0.1) == pytest.approx(0.1)
