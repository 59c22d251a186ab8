"""Training an autoencoder: reconstruction error plus a small KL term (models/autoencoder.py), no EMA - the
weights of the last step are the ones a text2image run freezes. `autoencoder_step` is also the first stage of a
text2image run."""

from __future__ import annotations

import torch

from aigc.core.device import autocast
from aigc.training.batch import Batch
from aigc.training.optim import gradient_step, make_optimizer


def autoencoder_step(autoencoder, optimizer, batches: list[Batch], config, autocast_context, position):
    """One optimiser step of `autoencoder` on the micro-batches; the values to log ("autoencoder_loss" and its
    reconstruction and KL parts, "lr")."""
    autoencoder.train().requires_grad_(True)

    def losses(batch: Batch):
        with autocast_context:
            total, terms = autoencoder.loss(batch.data, batch.generator)
        return total, {"autoencoder_loss": total, **terms}

    return gradient_step(optimizer, autoencoder, batches, losses, config, position, "autoencoder_loss")


class AutoencoderTrainer:
    def __init__(self, autoencoder, config, device: torch.device):
        self.train_config = config.train
        self.autoencoder = autoencoder.to(device)
        self.optimizers = {"autoencoder": make_optimizer(self.autoencoder.parameters(), self.train_config)}
        self.modules = {"autoencoder": self.autoencoder}
        self.sampling_model = self.autoencoder
        self.autocast = autocast(self.train_config.precision, device)

    def step(self, batches: list[Batch], position) -> dict[str, float]:
        optimizer = self.optimizers["autoencoder"]
        return autoencoder_step(self.autoencoder, optimizer, batches, self.train_config, self.autocast, position)
