"""aigc optimize: each transform, its checkpoint round trip, fine-tuning that keeps the zeros, and the errors."""

import dataclasses
import re

import pytest
import torch
from torch import nn

from aigc.compression import compress_checkpoint
from aigc.core.checkpoint import latest_checkpoint
from aigc.core.errors import UserError
from aigc.families.registry import generate, load_checkpoint, load_model
from aigc.models.compression import (
    CompressionConfig,
    int8_state,
    load_int8,
    prunable_layers,
    quantize_int8,
)

SEEDS = range(16)


def file_mib(path) -> float:
    return path.stat().st_size / 2**20


def ema_bytes(run) -> int:
    return sum(t.numel() * t.element_size() for t in load_checkpoint(latest_checkpoint(run)).modules["ema"].values())


def test_int8_weights_survive_a_checkpoint_exactly():
    torch.manual_seed(0)
    float_model = nn.Sequential(nn.Linear(16, 64), nn.LeakyReLU(0.2), nn.Linear(64, 32), nn.Tanh())
    quantized = quantize_int8(
        nn.Sequential(nn.Linear(16, 64), nn.LeakyReLU(0.2), nn.Linear(64, 32), nn.Tanh()).requires_grad_(False)
    )
    quantized.load_state_dict(quantize_int8(float_model).state_dict())
    state = int8_state(quantized)
    assert state["0.weight_int8"].dtype == torch.int8 and state["0.weight_scales"].shape == (64,)
    rebuilt = load_int8(nn.Sequential(nn.Linear(16, 64), nn.LeakyReLU(0.2), nn.Linear(64, 32), nn.Tanh()), state)
    x = torch.randn(8, 16)
    assert torch.equal(rebuilt(x), quantized(x))


def test_int8_gan_is_smaller_and_draws_nearly_the_same_images(mlp_gan_run, tmp_path):
    out = tmp_path / "int8"
    path = compress_checkpoint(mlp_gan_run, out, CompressionConfig(quantize="int8"), progress=False)
    assert path.stat().st_size < 0.35 * ema_bytes(mlp_gan_run)  # int8 weights: a quarter, plus scales
    model, config = load_model(out)
    assert config.compression.quantize == "int8" and config.compression.source.endswith(".safetensors")
    original, _ = load_model(mlp_gan_run)
    a, b = generate(original, SEEDS).float(), generate(model, SEEDS).float()
    assert 0 < (a - b).abs().mean() < 3  # of 255: int8 rounding, not a different model


def test_bf16_halves_the_file_and_runs_under_autocast(diffusion_run, tmp_path):
    out = tmp_path / "bf16"
    path = compress_checkpoint(diffusion_run, out, CompressionConfig(quantize="bf16"), progress=False)
    assert path.stat().st_size < 0.55 * ema_bytes(diffusion_run)
    model, _ = load_model(out)
    assert model.compute_dtype == torch.bfloat16
    original, _ = load_model(diffusion_run)
    a, b = generate(original, SEEDS).float(), generate(model, SEEDS).float()
    assert 0 < (a - b).abs().mean() < 8


@pytest.mark.parametrize("structure", ["unstructured", "channels"])
def test_pruning_zeroes_the_asked_fraction_of_every_layer(gan_run, tmp_path, structure):
    out = tmp_path / structure
    compress_checkpoint(gan_run, out, CompressionConfig(prune=0.3, prune_structure=structure), progress=False)
    model, config = load_model(out)
    assert config.compression.prune == 0.3 and config.compression.prune_structure == structure
    layers = prunable_layers(model)
    if structure == "channels":
        assert not bool((layers[-1].weight == 0).any())  # the image-making layer keeps every channel
        layers = layers[:-1]
    for layer in layers:
        weight = layer.weight
        assert (weight == 0).float().mean() == pytest.approx(0.3, abs=0.07)
        if structure == "channels":  # whole output channels are zero
            per_channel = weight.transpose(0, 1) if isinstance(layer, nn.ConvTranspose2d) else weight
            assert bool(((per_channel.flatten(1) == 0).all(dim=1) == (per_channel.flatten(1) == 0).any(dim=1)).all())
    assert generate(model, SEEDS).shape == (16, 1, 8, 8)


def test_finetuning_keeps_the_pruned_weights_at_zero(diffusion_run, tmp_path):
    out = tmp_path / "ft"
    options = CompressionConfig(prune=0.5, finetune_kimg=0.032)
    path = compress_checkpoint(diffusion_run, out, options, progress=False)
    start, end = load_checkpoint(latest_checkpoint(diffusion_run)), load_checkpoint(path)
    assert end.step == start.step + 2 and end.config.compression.finetune_kimg == 0.032
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [path.name, path.name.replace(".", ".state.", 1)]
    model, _ = load_model(path)
    # the same pruning without fine-tuning: magnitude pruning is deterministic, so these are its starting weights
    pruned_path = compress_checkpoint(diffusion_run, tmp_path / "p", CompressionConfig(prune=0.5), progress=False)
    pruned = load_model(pruned_path)[0]
    for before, after in zip(prunable_layers(pruned), prunable_layers(model), strict=True):
        zeros = before.weight == 0
        assert zeros.float().mean() == pytest.approx(0.5, abs=0.02)
        assert bool((after.weight[zeros] == 0).all())  # still pruned after training
    pairs = zip(prunable_layers(pruned), prunable_layers(model), strict=True)
    assert all(not torch.equal(b.weight, a.weight) for b, a in pairs)  # and the rest did train


@pytest.mark.parametrize(
    "first, second, message",
    [
        (None, CompressionConfig(), "nothing to do"),
        (CompressionConfig(quantize="int8"), CompressionConfig(prune=0.2), "already quantised (int8)"),
        (CompressionConfig(prune=0.2), CompressionConfig(prune=0.2), "already pruned"),
        (None, CompressionConfig(finetune_kimg=1.0), "give --prune too"),
        (None, CompressionConfig(prune=0.2, finetune_kimg=1.0, quantize="bf16"), "fine-tune first"),
    ],
)
def test_impossible_requests_are_user_errors(gan_run, tmp_path, first, second, message):
    source = gan_run
    if first is not None:
        source = tmp_path / "first"
        compress_checkpoint(gan_run, source, first, progress=False)
    with pytest.raises(UserError, match=re.escape(message)):
        compress_checkpoint(source, tmp_path / "second", second, progress=False)


def test_a_pruned_model_can_then_be_quantised(gan_run, tmp_path):
    compress_checkpoint(gan_run, tmp_path / "p", CompressionConfig(prune=0.2), progress=False)
    compress_checkpoint(tmp_path / "p", tmp_path / "pq", CompressionConfig(quantize="bf16"), progress=False)
    _, config = load_model(tmp_path / "pq")
    assert dataclasses.replace(config.compression, source="") == CompressionConfig(quantize="bf16", prune=0.2)
