"""Text-to-image training in two stages within one run: the first `autoencoder.kimg` thousand images train the
autoencoder (reconstruction + KL); then it is frozen, the spread of its latents measured on the first batch
after it (so the denoiser sees unit-variance latents), and the text encoder and U-Net train jointly on the
denoising loss of the latents, each image under one of its captions drawn at random, a share of them dropped
to the empty prompt for guidance. A run given `--autoencoder RUN` starts at the second stage."""

from __future__ import annotations

from pathlib import Path

import torch

from aigc.core import distributed
from aigc.core.device import autocast
from aigc.core.errors import UserError
from aigc.families.text2image.model import build_autoencoder, build_denoiser, sampling_model, trained_autoencoder
from aigc.models.losses import make_loss
from aigc.models.text_encoder import PAD
from aigc.training.autoencoder import autoencoder_step
from aigc.training.batch import Batch
from aigc.training.ema import EMA, ema_beta
from aigc.training.optim import gradient_step, make_optimizer


class Text2ImageTrainer:
    def __init__(self, config, device: torch.device, fresh: bool = True):
        self.train_config = config.train
        self.autoencoder, self.denoiser = build_autoencoder(config).to(device), build_denoiser(config).to(device)
        # a fresh run starts from the weights it was given (a resumed one from its checkpoint, which the loop loads)
        if fresh and config.autoencoder.init and not config.autoencoder.pixels:
            self.autoencoder.load_state_dict(trained_autoencoder(config.autoencoder.init).weights)
        self.frozen_text = bool(config.text.pretrained_config)
        if self.frozen_text:  # a pretrained text encoder stays as it is (Stable Diffusion's CLIP does)
            if fresh:
                self.denoiser.net.text.load_weights(Path(config.text.pretrained))
            self.denoiser.net.text.requires_grad_(False)
        self.ema = EMA(self.denoiser)
        trained = [p for p in self.denoiser.parameters() if p.requires_grad]
        self.optimizers = {"model": make_optimizer(trained, self.train_config)}
        self.stage_images = 0 if config.autoencoder.init else round(config.autoencoder.kimg * 1000)
        if self.stage_images:
            self.optimizers["autoencoder"] = make_optimizer(self.autoencoder.parameters(), self.train_config)
        self.modules = {"autoencoder": self.autoencoder, "model": self.denoiser, "ema": self.ema.model}
        self.loss_fn = make_loss(config.loss, self.denoiser)
        self.autocast = autocast(self.train_config.precision, device)
        self.sampling_model = sampling_model(config, self.autoencoder, self.ema.model)

    def step(self, batches: list[Batch], position) -> dict[str, float]:
        if position.seen < self.stage_images:
            return self.autoencoder_step(batches, position)
        if position.seen - self.train_config.batch < self.stage_images:  # the first step of the second stage
            self.measure_latent_scale(batches)
        return self.denoiser_step(batches, position)

    def autoencoder_step(self, batches: list[Batch], position) -> dict[str, float]:
        optimizer = self.optimizers["autoencoder"]
        return autoencoder_step(self.autoencoder, optimizer, batches, self.train_config, self.autocast, position)

    @torch.no_grad()
    def measure_latent_scale(self, batches: list[Batch]) -> None:
        """latent_scale := the standard deviation of the latent means of this step's images, over all ranks."""
        self.autoencoder.latent_scale.fill_(1.0)
        latents = torch.cat([self.autoencoder.encode(b.data).float() for b in batches])
        moments = distributed.mean(torch.stack([latents.mean(), latents.pow(2).mean()]))
        scale = float((moments[1] - moments[0] ** 2).clamp_min(0).sqrt())
        if not scale > 1e-6:
            raise UserError("the autoencoder's latents have no spread; train it longer (--autoencoder-kimg)")
        self.autoencoder.latent_scale.fill_(scale)

    def denoiser_step(self, batches: list[Batch], position) -> dict[str, float]:
        tc, optimizer = self.train_config, self.optimizers["model"]
        seen = position.seen - self.stage_images
        self.autoencoder.eval().requires_grad_(False)
        self.denoiser.train()
        if self.frozen_text:
            self.denoiser.net.text.eval()  # no dropout in a frozen encoder

        def losses(batch: Batch):
            with torch.no_grad(), self.autocast:
                latents = self.autoencoder.encode(batch.data).float()
            prompts = one_caption_each(batch.condition, batch.generator)
            with self.autocast:
                loss = self.loss_fn(self.denoiser, latents, prompts, batch.generator).mean()
            return loss, {"loss": loss}

        values = gradient_step(optimizer, self.denoiser, batches, losses, tc, position, since=self.stage_images)
        self.ema.update(self.denoiser, ema_beta(tc.batch, seen + tc.batch, tc.ema_halflife, tc.ema_rampup))
        return values


def one_caption_each(captions: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Prompt ids [N, T] from captions [N, K, T] (K slots, the unused ones all PAD): one caption per image, drawn
    uniformly from its own."""
    counts = (captions[:, :, 0] != PAD).sum(1)
    u = torch.rand(len(captions), generator=generator, device=generator.device).to(captions.device)
    chosen = (u * counts).long().clamp_max(counts - 1)
    return captions[torch.arange(len(captions), device=captions.device), chosen]
