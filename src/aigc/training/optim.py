"""Optimisation settings, the optimiser and the learning-rate schedule."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Literal

import torch


@dataclass(frozen=True)
class TrainConfig:
    batch: int = field(default=64, metadata={"help": "images per optimiser step"})
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate (a GAN: of G)"})
    warmup_kimg: float = field(default=5.0, metadata={"help": "linear learning-rate warm-up, thousands of images"})
    weight_decay: float = 0.0
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm (0: off)"})
    ema_halflife_kimg: float = field(default=50.0, metadata={"help": "EMA half-life in thousands of images"})
    ema_rampup: float = 0.05  # early on, the EMA half-life is at most this share of the images seen
    kimg: float | None = field(default=None, metadata={"help": "stop after this many thousand images"})
    minutes: float | None = field(default=None, metadata={"help": "stop after this many minutes of training"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation, data order and noise"})
    precision: Literal["auto", "fp32", "bf16"] = field(
        default="auto", metadata={"help": "fp32, bf16 (autocast), or auto: bf16 where the hardware has it natively"}
    )
    memory_format: Literal["contiguous", "channels_last"] = field(
        default="contiguous", metadata={"help": "contiguous or channels_last"}
    )
    snapshot_kimg: float = field(default=20.0, metadata={"help": "checkpoint and sample grid every N kimg"})
    grid_size: int = 64  # images in each snapshot grid, seeds 0..grid_size-1
    eval_every_kimg: float | None = field(
        default=None, metadata={"help": "FID (+ coverage) of the EMA model every N kimg", "flag": "--eval-every"}
    )
    eval_n: int = field(default=1000, metadata={"help": "images generated per in-loop evaluation"})
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: torch's choice)"})


DEFAULT_MINUTES = 10.0  # the budget when neither --kimg nor --minutes is given


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)


def learning_rate(config: TrainConfig, nimg: int) -> float:
    """Linear warm-up over `warmup_kimg`, then constant (so extending a run never changes its past)."""
    if config.warmup_kimg <= 0:
        return config.lr
    return config.lr * min(1.0, nimg / (config.warmup_kimg * 1000))


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes in bf16 natively; elsewhere bf16 autocast is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    capabilities = torch.cpu.get_capabilities()
    return device.type == "cpu" and bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def autocast(config: TrainConfig, device: torch.device):
    """The forward passes' precision context: bf16 autocast, or a no-op for fp32."""
    if config.precision == "bf16" or (config.precision == "auto" and native_bf16(device)):
        return torch.autocast(device.type, torch.bfloat16)
    return contextlib.nullcontext()
