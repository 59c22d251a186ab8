"""Recommender training: at every position of every window, the cross-entropy of the item that came next over the
whole catalogue (a full softmax: with it SASRec beats BERT4Rec, Klenitskiy & Vasilev 2023, where SASRec's own
one sampled negative per position leaves it behind), AdamW with weight decay on the matrices only. With ids and
text, each step leaves out the id part of a random `--id-dropout` share of the items, in what the model reads and
in what it ranks, so it learns to rank an item by its text alone as it must rank a cold one."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc.core.device import autocast
from aigc.models.recommender import UNSCORED
from aigc.training.batch import Batch
from aigc.training.optim import decaying_matrices, gradient_step


class RecommenderTrainer:
    def __init__(self, model: torch.nn.Module, config, device: torch.device, withheld: torch.Tensor):
        """`withheld` (bool [items + 1]): the items held out for cold start, left out of every softmax - as if
        they did not exist yet - so that no step teaches the model that their text is never liked."""
        self.train_config = config.train
        self.id_dropout = config.items.id_dropout if config.items.representation == "id+text" else 0.0
        self.withheld = withheld
        self.model = model.to(device)
        self.optimizers = {"model": decaying_matrices(self.model, config.train)}
        self.modules = {"model": self.model}
        self.autocast = autocast(config.train.precision, device)
        self.unranked = None  # on the model's device, at the first step

    def ranked(self) -> torch.Tensor:
        """bool [items + 1]: the items each training softmax ranks."""
        if self.unranked is None:
            self.unranked = ~self.model.scorable() | self.withheld.to(self.model.known.device)
        return ~self.unranked

    @property
    def sampling_model(self):
        return self.model

    def loss(self, windows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The mean cross-entropy of each next item of `windows` [N, context + 1] (right-padded with 0)."""
        windows = windows.long()
        read, named = windows[:, :-1], windows[:, 1:]
        dropped = None
        if self.id_dropout:
            draws = torch.rand(len(self.model.known), generator=generator, device=generator.device)
            dropped = draws.to(windows.device) < self.id_dropout
        with self.autocast:
            vectors = self.model.vectors(dropped)
            states = self.model.states(read, vectors)
            real = named > 0
            scores = states[real] @ vectors.T
        scores = scores.float().masked_fill_(~self.ranked(), UNSCORED)  # in place: a copy costs a tenth of a step
        return F.cross_entropy(scores, named[real])

    def step(self, batches: list[Batch], position) -> dict[str, float]:
        self.model.train()

        def losses(batch: Batch):
            loss = self.loss(batch.data, batch.generator)
            return loss, {"loss": loss}

        return gradient_step(self.optimizers["model"], self.model, batches, losses, self.train_config, position)
