"""What the training loop feeds a trainer: the stored training examples, their order, and batches.

Shapes are the family's business: a batch's `data` may be images [N, C, H, W], clips [N, C, T, H, W] or token
sequences [N, L]; its `condition` a class index [N], a prompt's token ids [N, L] or its embeddings [N, L, D].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    data: torch.Tensor  # in model space (images: float in [-1, 1])
    condition: torch.Tensor | None  # one row per example, or None for an unconditional model
    generator: torch.Generator  # this batch's own stream: noise, latents, augmentation


@dataclass
class TrainingData:
    """The examples as stored [N, ...] (images: uint8), their conditions [N, ...] or None, and `prepare`, which
    turns a selection of examples into model space with this batch's random augmentation."""

    examples: torch.Tensor
    conditions: torch.Tensor | None
    prepare: Callable[[torch.Tensor, torch.Generator], torch.Tensor]

    def to(self, device: torch.device) -> TrainingData:
        conditions = None if self.conditions is None else self.conditions.to(device)
        return TrainingData(self.examples.to(device), conditions, self.prepare)


class DataOrder:
    """Shuffled passes over N items: epoch e is a permutation seeded by (seed, e), so the items of any stretch
    of training are a pure function of the position in the stream."""

    def __init__(self, num_items: int, seed: int):
        self.num_items, self.seed = num_items, seed
        self._epoch, self._permutation = -1, None

    def _epoch_permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._permutation = epoch, torch.randperm(self.num_items, generator=generator)
        return self._permutation

    def indices(self, start: int, count: int) -> torch.Tensor:
        parts = []
        while count > 0:
            epoch, offset = divmod(start, self.num_items)
            take = min(count, self.num_items - offset)
            parts.append(self._epoch_permutation(epoch)[offset : offset + take])
            start, count = start + take, count - take
        return torch.cat(parts)
