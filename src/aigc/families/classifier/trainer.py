"""Classifier training: the cross-entropy of each text's label, AdamW (weight decay on the matrices only), under
the learning-rate schedule of every family (training/optim.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc.core.device import autocast
from aigc.families.classifier.data import model_input
from aigc.training.batch import Batch
from aigc.training.optim import gradient_step, make_optimizer


class ClassifierTrainer:
    def __init__(self, model: torch.nn.Module, config, device: torch.device):
        self.train_config = config.train
        self.model = model.to(device)
        trained = [p for p in self.model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in trained if p.ndim == 2], "weight_decay": config.train.weight_decay},
            {"params": [p for p in trained if p.ndim < 2], "weight_decay": 0.0},
        ]
        self.optimizers = {"model": make_optimizer(groups, config.train)}
        self.modules = {"model": self.model}
        self.autocast = autocast(config.train.precision, device)

    @property
    def sampling_model(self):
        return self.model

    def step(self, batches: list[Batch], position) -> dict[str, float]:
        self.model.train()

        def losses(batch: Batch):
            tokens, lengths = model_input(batch.data)
            with self.autocast:
                logits = self.model(tokens, lengths)
            loss = F.cross_entropy(logits.float(), batch.condition)
            return loss, {"loss": loss}

        return gradient_step(self.optimizers["model"], self.model, batches, losses, self.train_config, position)
