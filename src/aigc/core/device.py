"""Where and in what precision to compute: the device a command asked for, what `--precision auto` means on it,
and the autocast context of the forward passes."""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from aigc.core.errors import UserError

Precision = Literal["auto", "fp32", "bf16"]


def resolve_device(requested: str | None) -> str:
    """The device asked for (default: cuda when available, else cpu); UserError when it is not here."""
    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is available here; use --device cpu")
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are; an all-int8 model (no float parameters) runs on the CPU."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes in bf16 natively; elsewhere bf16 autocast is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    capabilities = torch.cpu.get_capabilities()
    return device.type == "cpu" and bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def resolved_precision(precision: Precision, device: torch.device) -> Literal["fp32", "bf16"]:
    """What `auto` means on `device`: bf16 where it is native, fp32 elsewhere."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(precision: Precision, device: torch.device):
    """The forward passes' precision context: bf16 autocast, or a no-op for fp32."""
    if resolved_precision(precision, device) == "bf16":
        return torch.autocast(device.type, torch.bfloat16)
    return contextlib.nullcontext()
