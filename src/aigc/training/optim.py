"""Optimisation settings, the optimiser, the learning-rate schedule, numeric precision, and one optimiser step
as gradients accumulated over micro-batches, averaged over ranks, clipped and applied."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

from aigc.core import distributed
from aigc.core.config import Config
from aigc.core.device import Precision
from aigc.core.errors import UserError, check_finite
from aigc.training.batch import Batch

LRSchedule = Literal["constant", "wsd", "cosine"]


@dataclass(frozen=True)
class TrainConfig(Config):
    batch: int = field(default=64, metadata={"help": "images per optimiser step, over all processes", "min": 1})
    batch_per_device: int | None = field(
        default=None,
        metadata={
            "help": "images per forward pass of each process; less than its share of --batch accumulates",
            "min": 1,
        },
    )
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate (a GAN: of G)", "above": 0.0})
    warmup_kimg: float = field(
        default=5.0, metadata={"help": "linear learning-rate warm-up, thousands of images", "min": 0.0}
    )
    lr_schedule: LRSchedule = field(
        default="constant", metadata={"help": "after warm-up: constant, warm-up-stable-decay, or cosine"}
    )
    decay: float = field(
        default=0.2, metadata={"help": "wsd: the share of the run the rate decays over", "above": 0.0, "max": 1.0}
    )
    final_lr: float = field(
        default=0.0, metadata={"help": "the learning rate at the end, as a share of --lr", "min": 0.0, "max": 1.0}
    )
    weight_decay: float = field(default=0.0, metadata={"min": 0.0})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm (0: off)", "min": 0.0})
    ema_halflife_kimg: float = field(
        default=50.0, metadata={"help": "EMA half-life in thousands of images", "min": 0.0}
    )
    # early on, the EMA half-life is at most this share of the images seen
    ema_rampup: float = field(default=0.05, metadata={"min": 0.0})
    kimg: float | None = field(default=None, metadata={"help": "stop after this many thousand images", "above": 0.0})
    minutes: float | None = field(
        default=None, metadata={"help": "stop after this many minutes of training", "above": 0.0}
    )
    seed: int = field(default=0, metadata={"help": "seed of initialisation, data order and noise", "min": 0})
    precision: Precision = field(
        default="auto", metadata={"help": "fp32, bf16 (autocast), or auto: bf16 where the hardware has it natively"}
    )
    memory_format: Literal["contiguous", "channels_last"] = field(
        default="contiguous", metadata={"help": "contiguous or channels_last"}
    )
    snapshot_kimg: float = field(
        default=20.0, metadata={"help": "checkpoint and sample grid every N kimg", "above": 0.0}
    )
    grid_size: int = field(default=64, metadata={"min": 1})  # images in each snapshot grid, seeds 0..grid_size-1
    eval_every_kimg: float | None = field(
        default=None,
        metadata={"help": "FID (+ coverage) of the EMA model every N kimg", "flag": "--eval-every", "above": 0.0},
    )
    eval_n: int = field(default=1000, metadata={"help": "images generated per in-loop evaluation", "min": 2})
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: torch's choice)", "min": 1})

    # What the training loop reads of a train config, in the family's unit (here images): the budget, how often
    # to snapshot and evaluate, and how a resumed run's budget grows.
    budget_fields: ClassVar[tuple[str, ...]] = ("kimg", "minutes")

    def limit(self) -> float | None:
        return None if self.kimg is None else self.kimg * 1000

    def snapshot_interval(self) -> float:
        return self.snapshot_kimg * 1000

    def eval_interval(self) -> float | None:
        return None if self.eval_every_kimg is None else self.eval_every_kimg * 1000

    def extended(self, seen: int, seconds: float, more: dict) -> TrainConfig:
        """The budget of a resumed run that has seen `seen` images in `seconds`, given `more` of it."""
        kimg = seen / 1000 + more["kimg"] if more.get("kimg") is not None else None
        minutes = seconds / 60 + more["minutes"] if more.get("minutes") is not None else None
        return dataclasses.replace(self, kimg=kimg, minutes=minutes)

    def describe_budget(self) -> str:
        return f"{self.kimg:g} kimg" if self.kimg is not None else f"{self.minutes:g} min"


DEFAULT_MINUTES = 10.0  # the budget when neither --kimg nor --minutes is given


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)


def budget_share(train, seen: int, seconds: float) -> float:
    """How much of its budget a run has spent, 0..1: of its amount (`train.limit()`: images, tokens) or of its
    minutes, whichever runs out first."""
    shares = []
    if train.limit() is not None:
        shares.append(seen / train.limit())
    if train.minutes is not None:
        shares.append(seconds / (train.minutes * 60))
    return min(1.0, max(shares, default=0.0))


def schedule_scale(schedule: LRSchedule, done: float, decay: float, final: float) -> float:
    """The learning rate after warm-up as a share of its peak, with `done` of the budget spent: constant; cosine
    down to `final` over the run; or constant until the last `decay` share of the run and linear down to `final`
    from there (warm-up-stable-decay, Hu et al. 2024). Only constant and wsd let a run be extended without
    changing its past (wsd's up to its decay), and both decay on time as well as amount."""
    if schedule == "cosine":
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * done))
    if schedule == "wsd":
        into_decay = max(0.0, done - (1 - decay)) / decay
        return 1 - (1 - final) * into_decay
    return 1.0


def learning_rate(config: TrainConfig, warmed: int, done: float) -> float:
    """Linear warm-up over the first `warmup_kimg` of the `warmed` images this model has trained on, then the
    schedule at `done` of the run's budget."""
    warm = min(1.0, warmed / (config.warmup_kimg * 1000)) if config.warmup_kimg > 0 else 1.0
    return config.lr * warm * schedule_scale(config.lr_schedule, done, config.decay, config.final_lr)


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


Losses = Callable[[Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def accumulate_gradients(micro_batches: Sequence[Batch], losses: Losses) -> dict[str, float]:
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


def apply_gradients(
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer], module: torch.nn.Module, grad_clip: float
) -> None:
    """Average the accumulated gradients over ranks, clip their norm, step (each optimiser holding a share of the
    module's parameters, when several do)."""
    distributed.average_gradients(module.parameters())
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
    for each in optimizer if isinstance(optimizer, Sequence) else [optimizer]:
        each.step()


def gradient_step(
    optimizer: torch.optim.Optimizer, module: torch.nn.Module, batches: Sequence[Batch], losses: Losses,
    config: TrainConfig, position, checked: str = "loss", since: int = 0,
) -> dict[str, float]:  # fmt: skip
    """One optimiser step of `module` on the micro-batches at the run's `position`: gradients of `losses`, the
    term `checked` refused when not finite, the learning rate (warmed up over the images since `since`, when the
    module began training), clipping; the averaged terms and the rate."""
    optimizer.zero_grad(set_to_none=True)
    values = accumulate_gradients(batches, losses)
    check_finite(checked.replace("_", " "), values[checked], position.step)
    lr = learning_rate(config, position.seen - since, budget_share(config, position.seen, position.train_seconds))
    for group in optimizer.param_groups:
        group["lr"] = lr
    apply_gradients(optimizer, module, config.grad_clip)
    return {**values, "lr": lr}
