"""Language-model training: next-token cross-entropy on random windows of the training text, with AdamW, or
Muon for the 2-D hidden weights (attention and MLP matrices; AdamW keeps the embedding, the head and the
gains, as Jordan et al. 2024 prescribe), under the learning-rate schedule of every family (training/optim.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aigc.core.device import autocast
from aigc.training.batch import Batch
from aigc.training.optim import gradient_step

BETAS = (0.9, 0.99)  # nanoGPT's for small character models


def make_optimizers(model: torch.nn.Module, train) -> dict[str, torch.optim.Optimizer]:
    """{"adamw": ...} or {"muon": hidden matrices, "adamw": the rest}, over the trainable parameters (a LoRA run's
    adapters alone: AdamW, as LoRA is trained everywhere). Weight decay applies to matrices only."""
    named = {name: p for name, p in model.named_parameters() if p.requires_grad}  # a tied head appears once
    outer = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    outer |= {id(p) for p in model.output_head().parameters()}
    matrices = [p for p in named.values() if p.ndim == 2]
    gains = [p for p in named.values() if p.ndim < 2]
    if train.optimizer == "adamw":
        groups = [{"params": matrices, "weight_decay": train.weight_decay}, {"params": gains, "weight_decay": 0.0}]
        return {"adamw": torch.optim.AdamW(groups, lr=train.lr, betas=BETAS)}
    hidden = [p for name, p in named.items() if p.ndim == 2 and id(p) not in outer and "lora_" not in name]
    ids = {id(p) for p in hidden}
    rest = [p for p in matrices if id(p) not in ids]  # embeddings, head, adapters
    optimizers = {}
    if hidden:
        # "match_rms_adamw" scales each update to AdamW's size (Liu et al. 2025), so both share --lr
        optimizers["muon"] = torch.optim.Muon(
            hidden, lr=train.lr, weight_decay=train.weight_decay, adjust_lr_fn="match_rms_adamw"
        )
    groups = [{"params": rest, "weight_decay": train.weight_decay}, {"params": gains, "weight_decay": 0.0}]
    optimizers["adamw"] = torch.optim.AdamW(groups, lr=train.lr, betas=BETAS)
    return optimizers


def next_token_loss(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each next token given the ones before it: of windows [N, T + 1], or of chat examples
    [N, 2, T + 1] (ids, and 1 where a token counts: the assistant's) over the tokens that count."""
    if batch.ndim == 2:
        logits = model(batch[:, :-1])
        return F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
    ids, counted = batch[:, 0].long(), batch[:, 1, 1:].flatten().bool()
    logits = model(ids[:, :-1]).float().flatten(0, 1)
    return F.cross_entropy(logits[counted], ids[:, 1:].flatten()[counted])


class LMTrainer:
    def __init__(self, model: torch.nn.Module, config, device: torch.device):
        self.train_config = config.train
        self.model = model.to(device)
        self.optimizers = make_optimizers(self.model, self.train_config)
        self.modules = {"model": self.model}
        self.autocast = autocast(self.train_config.precision, device)

    @property
    def sampling_model(self):
        return self.model

    def step(self, batches: list[Batch], position) -> dict[str, float]:
        self.model.train()

        def losses(batch: Batch):
            with self.autocast:
                loss = next_token_loss(self.model, batch.data)
            return loss, {"loss": loss}

        optimizers = list(self.optimizers.values())
        return gradient_step(optimizers, self.model, batches, losses, self.train_config, position)
