"""Exponential moving average of weights with a half-life counted in what the run counts - images, for the image
families that keep one (Karras et al. 2022, App. F.3)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(batch_size: int, seen: int, halflife: float, rampup_ratio: float | None) -> float:
    """Decay per step of `batch_size` examples so that a weight's influence halves every `halflife` units (images).
    Early on the half-life is capped at `rampup_ratio * seen`, so the average forgets the random initialisation
    quickly."""
    if rampup_ratio is not None:
        halflife = min(halflife, seen * rampup_ratio)
    return 0.5 ** (batch_size / max(halflife, 1e-8))


class EMA:
    """A frozen copy of a model whose parameters follow the training model's as an exponential moving average."""

    def __init__(self, model: nn.Module):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, beta: float) -> None:
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1 - beta)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)
