"""Post-training compression of a trained model (the one a checkpoint samples with): magnitude pruning, dynamic
int8 quantisation of the Linear layers, and bf16 weights. The result is a normal checkpoint whose config records
the transform (`CompressionConfig`), so `load_compressed` rebuilds it and sample/eval/serve use it unchanged.

- Pruning zeroes weights of every Conv/ConvTranspose/Linear layer, per layer: the smallest |w| (unstructured) or
  the output channels of least L2 norm (channels; all but the image-making last layer). Tensors stay dense, so
  the file and the speed stay the same unless a sparse-aware runtime consumes them; fine-tuning keeps the zeros
  (see `pruned_masks`).
- int8 is torch.ao's dynamic quantisation (per-channel int8 weights, activations quantised on the fly) of
  nn.Linear only: it speeds up Linear-heavy models (the MLP GAN) and leaves convolutions in float.
- bf16 stores weights as bfloat16 (half the file) and evaluates the network under bf16 autocast.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from aigc.core.config import Config
from aigc.core.errors import UserError

PRUNABLE = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


@dataclass(frozen=True)
class CompressionConfig(Config):
    quantize: Literal["none", "int8", "bf16"] = field(
        default="none", metadata={"help": "int8: dynamic int8 Linear layers; bf16: bfloat16 weights and compute"}
    )
    prune: float = field(
        default=0.0, metadata={"help": "fraction of each layer's weights to zero (0: none)", "min": 0.0, "below": 1.0}
    )
    prune_structure: Literal["unstructured", "channels"] = field(
        default="unstructured", metadata={"help": "zero single weights, or whole output channels"}
    )
    finetune_kimg: float = field(
        default=0.0, metadata={"help": "train this much more after pruning, keeping zeros", "min": 0.0}
    )
    source: str = ""  # the checkpoint this one was made from


def prunable_layers(module: nn.Module) -> list[nn.Module]:
    """The layers pruning applies to; spectral-normalised ones (a GAN's D) are left alone."""
    return [
        layer
        for layer in module.modules()
        if isinstance(layer, PRUNABLE) and not parametrize.is_parametrized(layer, "weight")
    ]


def prune_weights(module: nn.Module, amount: float, structure: str) -> None:
    """Zero `amount` of each prunable layer's weights in place (the zeros are baked in: no masks remain)."""
    if not 0 < amount < 1:
        raise UserError(f"--prune {amount}: give a fraction between 0 and 1, e.g. 0.3")
    layers = prunable_layers(module)
    if structure == "channels":
        layers = layers[:-1]  # the last layer makes the image: a pruned output channel would be a lost colour
    for layer in layers:
        if structure == "unstructured":
            prune.l1_unstructured(layer, "weight", amount)
        else:  # output channels: dim 0 of Conv/Linear weights, dim 1 of ConvTranspose ones [in, out, k, k]
            prune.ln_structured(layer, "weight", amount, n=2, dim=1 if isinstance(layer, nn.ConvTranspose2d) else 0)
        prune.remove(layer, "weight")


def pruned_masks(modules) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, keep-mask) of every prunable layer that holds exact zeros: after each optimiser step, fine-tuning
    multiplies the weights by their masks, so pruned weights stay pruned."""
    masks = []
    for module in modules:
        for layer in prunable_layers(module):
            keep = layer.weight != 0
            if not bool(keep.all()):
                masks.append((layer.weight, keep))
    return masks


@torch.no_grad()
def keep_pruned(masks) -> None:
    for weight, keep in masks:
        weight.mul_(keep)


def quantize_int8(model: nn.Module) -> nn.Module:
    """The model with every nn.Linear replaced by a dynamic int8 one (per-channel weights), in place."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao's eager quantisation is deprecated in favour of torchao, which is not built for this torch yet
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        return quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


def quantized_linears(model: nn.Module) -> dict[str, nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {name: layer for name, layer in model.named_modules() if isinstance(layer, DynamicLinear)}


def int8_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A quantised model's weights as plain tensors (safetensors holds no quantised tensors): the int8 values,
    per-channel scales and zero points of each Linear, and everything else as it is."""
    linears = quantized_linears(model)
    state = {
        key: value
        for key, value in model.state_dict().items()
        if isinstance(value, torch.Tensor) and not any(key.startswith(name + ".") for name in linears)
    }
    for name, layer in linears.items():
        weight = layer.weight()
        state[f"{name}.weight_int8"] = weight.int_repr()
        state[f"{name}.weight_scales"] = weight.q_per_channel_scales().float()
        state[f"{name}.weight_zero_points"] = weight.q_per_channel_zero_points()
        if layer.bias() is not None:
            state[f"{name}.bias"] = layer.bias().detach()
    return state


def load_int8(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A float model loaded with `int8_state`'s tensors and quantised as they describe."""
    linears = {name for name, layer in model.named_modules() if isinstance(layer, nn.Linear)}
    plain = {key: value for key, value in state.items() if key.rpartition(".")[0] not in linears}
    missing, unexpected = model.load_state_dict(plain, strict=False)
    missing = [key for key in missing if key.rpartition(".")[0] not in linears]
    if missing or unexpected:
        raise RuntimeError(f"int8 weights do not match the model: missing {missing}, unexpected {unexpected}")
    model = quantize_int8(model)
    for name, layer in quantized_linears(model).items():
        scales, zero_points = state[f"{name}.weight_scales"].double(), state[f"{name}.weight_zero_points"]
        values = (state[f"{name}.weight_int8"].float() - zero_points[:, None]) * scales[:, None].float()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
            weight = torch.quantize_per_channel(values, scales, zero_points, 0, torch.qint8)
        layer.set_weight_bias(weight, state.get(f"{name}.bias"))
    return model


def bf16_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in model.state_dict().items()}


def load_compressed(model: nn.Module, state: dict[str, torch.Tensor], compression: CompressionConfig) -> nn.Module:
    """`model` (freshly built) with the weights `state` of a checkpoint compressed as `compression` records:
    int8 Linear layers rebuilt, bf16 weights widened on the way in with bf16 compute kept."""
    if compression.quantize == "int8":
        return load_int8(model, state)
    model.load_state_dict(state)
    if compression.quantize == "bf16":
        model.compute_dtype = torch.bfloat16
    return model
