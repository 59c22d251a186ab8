"""Diffusion training: the denoiser, its EMA and optimiser; `step` is one gradient step of the denoising loss."""

from __future__ import annotations

import torch

from aigc.core.device import autocast
from aigc.models.diffusion import build_denoiser
from aigc.models.losses import make_loss
from aigc.training.batch import Batch
from aigc.training.ema import EMA, ema_beta
from aigc.training.optim import gradient_step, make_optimizer


class DiffusionTrainer:
    def __init__(self, config, device: torch.device):
        self.train_config = config.train
        self.denoiser = build_denoiser(config.model).to(device)
        if self.train_config.memory_format == "channels_last":
            self.denoiser = self.denoiser.to(memory_format=torch.channels_last)
        self.ema = EMA(self.denoiser)
        self.optimizers = {"model": make_optimizer(self.denoiser.parameters(), self.train_config)}
        self.modules = {"model": self.denoiser, "ema": self.ema.model}
        self.loss_fn = make_loss(config.loss, self.denoiser)
        self.autocast = autocast(self.train_config.precision, device)

    @property
    def sampling_model(self):
        return self.ema.model

    def step(self, batches: list[Batch], position) -> dict[str, float]:
        tc, optimizer, seen = self.train_config, self.optimizers["model"], position.seen
        self.denoiser.train()

        def losses(batch: Batch):
            with self.autocast:
                loss = self.loss_fn(self.denoiser, batch.data, batch.condition, batch.generator).mean()
            return loss, {"loss": loss}

        values = gradient_step(optimizer, self.denoiser, batches, losses, tc, position)
        self.ema.update(self.denoiser, ema_beta(tc.batch, seen + tc.batch, tc.ema_halflife, tc.ema_rampup))
        return values
