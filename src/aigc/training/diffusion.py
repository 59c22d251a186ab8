"""Diffusion training: the denoiser, its EMA and optimiser; `step` is one gradient step of the denoising loss."""

from __future__ import annotations

import torch

from aigc.errors import check_finite
from aigc.models.diffusion import build_denoiser
from aigc.training.ema import EMA, ema_beta
from aigc.training.losses import make_loss
from aigc.training.optim import (
    MicroBatch,
    accumulate_gradients,
    apply_gradients,
    autocast,
    learning_rate,
    make_optimizer,
)


class DiffusionTrainer:
    remedy = "a lower --lr or a longer --warmup-kimg"

    def __init__(self, config, device: torch.device):
        self.train_config = config.train
        self.denoiser = build_denoiser(config.model).to(device)
        if self.train_config.memory_format == "channels_last":
            self.denoiser = self.denoiser.to(memory_format=torch.channels_last)
        self.ema = EMA(self.denoiser)
        self.optimizers = {"model": make_optimizer(self.denoiser.parameters(), self.train_config)}
        self.modules = {"model": self.denoiser, "ema": self.ema.model}
        self.loss_fn = make_loss(config.loss, self.denoiser)
        self.autocast = autocast(self.train_config, device)

    @property
    def sampling_model(self):
        return self.ema.model

    def step(self, micro_batches: list[MicroBatch], step: int, nimg: int) -> dict[str, float]:
        tc, optimizer = self.train_config, self.optimizers["model"]
        self.denoiser.train()

        def losses(micro: MicroBatch):
            with self.autocast:
                loss = self.loss_fn(self.denoiser, micro.images, micro.labels, micro.generator).mean()
            return loss, {"loss": loss}

        optimizer.zero_grad(set_to_none=True)
        values = accumulate_gradients(micro_batches, losses)
        check_finite("loss", values["loss"], step)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(tc, nimg)
        apply_gradients(optimizer, self.denoiser, tc.grad_clip)
        self.ema.update(self.denoiser, ema_beta(tc.batch, nimg + tc.batch, tc.ema_halflife_kimg, tc.ema_rampup))
        return values
