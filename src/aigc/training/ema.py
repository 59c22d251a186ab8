"""Exponential moving average of weights with a half-life counted in images (Karras et al. 2022, App. F.3)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(batch_size: int, nimg: int, halflife_kimg: float, rampup_ratio: float | None) -> float:
    """Decay per step so that a weight's influence halves every `halflife` images. Early on the half-life is
    capped at `rampup_ratio * nimg`, so the average forgets the random initialisation quickly."""
    halflife_nimg = halflife_kimg * 1000
    if rampup_ratio is not None:
        halflife_nimg = min(halflife_nimg, nimg * rampup_ratio)
    return 0.5 ** (batch_size / max(halflife_nimg, 1e-8))


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
