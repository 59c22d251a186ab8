"""What a family that labels texts offers the rest of aigc: its class names, the logits of texts, and the
temperature that turns them into calibrated probabilities. `aigc classify`, evaluation and the service's
/v1/classify use these methods and nothing else of the model, so a new labelling family is a subclass and one
registry entry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from aigc.families.family import Family


class LabellingFamily(Family):
    """A family whose outputs are class probabilities of texts, each a function of its text alone (never of the
    batch it is labelled in). Subclasses implement `labels`, `logits`, `temperature` and `calibrate`; the
    sample config has a `temperature` (None: the model's own)."""

    modality: ClassVar[str] = "labels"
    conditions: ClassVar[str] = "texts"
    evaluation: ClassVar[str] = "labels"
    unit: ClassVar[str] = "text"
    progress_key: ClassVar[str] = "texts"

    def labels(self, model: nn.Module) -> tuple[str, ...]:
        """The class names, in the order of the logits."""
        raise NotImplementedError

    def logits(self, model: nn.Module, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Logits [len(texts), classes] (float32, on the CPU)."""
        raise NotImplementedError

    def temperature(self, model: nn.Module) -> float:
        """The model's own temperature: its logits are divided by it before the softmax."""
        raise NotImplementedError

    def calibrate(self, model: nn.Module, temperature: float) -> None:
        """From now on the model's own temperature is `temperature` (kept in its checkpoint)."""
        raise NotImplementedError

    def classify(self, model: nn.Module, texts: Sequence[str], sample, batch_size: int = 64) -> torch.Tensor:
        """Probabilities [len(texts), classes]: the softmax of the logits divided by `sample.temperature`, or by
        the model's own when that is None."""
        temperature = self.temperature(model) if sample.temperature is None else sample.temperature
        return (self.logits(model, texts, batch_size) / temperature).softmax(-1)

    def generate(self, model: nn.Module, seeds, conditions=None, sample=None, batch_size: int = 64, **options):
        """The probabilities of the texts `conditions` (one per seed; a label needs no seed): what the service's
        queue hands a labelling model, so that requests merge into batches as image requests do."""
        return self.classify(model, conditions, sample or self.sample_config(), batch_size)

    def progress(self, seen: int) -> dict[str, float]:
        return {self.progress_key: seen}

    def amount(self, seen: int) -> str:
        return f"{seen:,} texts"
