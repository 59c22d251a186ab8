"""Training an autoencoder on its own: `autoencoder_step` (training/autoencoder.py, also the first stage of a
text2image run) on every batch, no EMA - the weights of the last step are the ones a text2image run freezes."""

from __future__ import annotations

import torch

from aigc.core.device import autocast
from aigc.training.autoencoder import autoencoder_step
from aigc.training.batch import Batch
from aigc.training.optim import make_optimizer


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
