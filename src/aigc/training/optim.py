"""The optimiser, the learning-rate schedule of every family, how a batch splits over processes, and one
optimiser step as gradients accumulated over micro-batches, averaged over ranks, clipped and applied."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from aigc.core import distributed
from aigc.core.errors import UserError, check_finite
from aigc.training.batch import Batch
from aigc.training.config import LRSchedule, TrainConfig


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)


def decaying_matrices(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the model's trainable weights, with weight decay on its matrices only (not on norms' scales,
    biases or a temperature), as the transformer families train."""
    trained = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trained if p.ndim == 2], "weight_decay": config.weight_decay},
        {"params": [p for p in trained if p.ndim < 2], "weight_decay": 0.0},
    ]
    return make_optimizer(groups, config)


def budget_share(train: TrainConfig, seen: int, seconds: float) -> float:
    """How much of its budget a run has spent, 0..1: of its amount (`train.budget`: images, tokens) or of its
    minutes, whichever runs out first."""
    shares = []
    if train.budget is not None:
        shares.append(seen / train.budget)
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
    """The learning rate of every family: linear warm-up over the first `warmup` of the `warmed` units (images,
    tokens) this model has trained on, then the schedule at `done` (0..1, `budget_share`) of the run's budget."""
    warm = min(1.0, warmed / config.warmup) if config.warmup > 0 else 1.0
    return config.lr * warm * schedule_scale(config.lr_schedule, done, config.decay, config.final_lr)


def split_batch(config: TrainConfig, world_size: int) -> tuple[int, int]:
    """(examples per micro-batch, micro-batches per rank) of the global batch over `world_size` ranks."""
    if config.batch % world_size:
        raise UserError(
            f"--batch {config.batch} does not split over {world_size} processes; use a multiple of {world_size}"
        )
    share = config.batch // world_size
    micro = config.batch_per_device or share
    if micro < 1 or share % micro:
        raise UserError(
            f"--batch-per-device {micro} does not divide each process's {share} examples per step "
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
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer], module: torch.nn.Module,
    batches: Sequence[Batch], losses: Losses, config: TrainConfig, position, checked: str = "loss", since: int = 0,
) -> dict[str, float]:  # fmt: skip
    """One optimiser step of `module` (by one optimiser, or several each holding a share of its parameters) on
    the micro-batches at the run's `position`: gradients of `losses`, the term `checked` refused when not finite,
    the learning rate (warmed up over the units since `since`, when the module began training), clipping; the
    averaged terms and the rate."""
    optimizers = optimizer if isinstance(optimizer, Sequence) else [optimizer]
    for each in optimizers:
        each.zero_grad(set_to_none=True)
    values = accumulate_gradients(batches, losses)
    check_finite(checked.replace("_", " "), values[checked], position.step)
    lr = learning_rate(config, position.seen - since, budget_share(config, position.seen, position.train_seconds))
    for each in optimizers:
        for group in each.param_groups:
            group["lr"] = lr
    apply_gradients(optimizers, module, config.grad_clip)
    return {**values, "lr": lr}
