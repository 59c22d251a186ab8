"""Optimisation settings, the optimiser, the learning-rate schedule, numeric precision, and one optimiser step
as gradients accumulated over micro-batches, averaged over ranks, clipped and applied."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from aigc.errors import UserError
from aigc.training import distributed


@dataclass(frozen=True)
class TrainConfig:
    batch: int = field(default=64, metadata={"help": "images per optimiser step, over all processes"})
    batch_per_device: int | None = field(
        default=None,
        metadata={"help": "images per forward pass of each process; less than its share of --batch accumulates"},
    )
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


def resolved_precision(config: TrainConfig, device: torch.device) -> Literal["fp32", "bf16"]:
    """What `auto` means on `device`."""
    if config.precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return config.precision


def autocast(config: TrainConfig, device: torch.device):
    """The forward passes' precision context: bf16 autocast, or a no-op for fp32."""
    if resolved_precision(config, device) == "bf16":
        return torch.autocast(device.type, torch.bfloat16)
    return contextlib.nullcontext()


def split_batch(config: TrainConfig, world_size: int) -> tuple[int, int]:
    """(images per micro-batch, micro-batches per rank) of the global batch over `world_size` ranks."""
    if config.batch % world_size:
        raise UserError(
            f"--batch {config.batch} does not split over {world_size} processes; use a multiple of {world_size}"
        )
    share = config.batch // world_size
    micro = config.batch_per_device or share
    if micro < 1 or share % micro:
        raise UserError(
            f"--batch-per-device {micro} does not divide each process's {share} images per step "
            f"(--batch {config.batch} over {world_size} processes); use a divisor of {share}"
        )
    return micro, share // micro


@dataclass
class MicroBatch:
    images: torch.Tensor  # in model space, [-1, 1]
    labels: torch.Tensor | None
    generator: torch.Generator  # this micro-batch's own stream: noise, latents, augmentation


Losses = Callable[[MicroBatch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def accumulate_gradients(micro_batches: Sequence[MicroBatch], losses: Losses) -> dict[str, float]:
    """Backpropagate the mean over micro-batches of the total that `losses` returns with its named terms; the
    terms come back averaged over micro-batches and ranks (one read from the device), so every rank sees the same
    values and takes the same decisions on them."""
    sums: dict[str, torch.Tensor] = {}
    for micro in micro_batches:
        total, terms = losses(micro)
        (total / len(micro_batches)).backward()
        for name, term in terms.items():
            sums[name] = sums.get(name, 0) + term.detach().float()
    averaged = distributed.mean(torch.stack(list(sums.values())) / len(micro_batches))
    return dict(zip(sums, averaged.tolist(), strict=True))


def apply_gradients(optimizer: torch.optim.Optimizer, module: torch.nn.Module, grad_clip: float) -> None:
    """Average the accumulated gradients over ranks, clip their norm, step."""
    distributed.average_gradients(module.parameters())
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
    optimizer.step()
