"""What a family that labels texts offers the rest of aigc: its class names, and calibrated class probabilities
of texts. `aigc classify`, evaluation, the monitor and the service's /v1/classify use these methods and nothing
else of the model, so an ensemble or a new labelling family is a subclass and one registry entry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from aigc.families.family import Family


class LabellingFamily(Family):
    """A family whose outputs are class probabilities of texts (one per text, never a function of the batch)."""

    modality: ClassVar[str] = "labels"
    conditions: ClassVar[str] = "texts"
    evaluation: ClassVar[str] = "labels"
    unit: ClassVar[str] = "text"
    progress_key: ClassVar[str] = "texts"

    def labels(self, model: nn.Module) -> tuple[str, ...]:
        """The class names, in the order of the probabilities."""
        raise NotImplementedError

    def classify(self, model: nn.Module, texts: Sequence[str], sample, batch_size: int = 64) -> torch.Tensor:
        """Probabilities [len(texts), classes] (float32, on the CPU), divided by `sample.temperature` (None: the
        model's own, fitted on validation) before the softmax."""
        raise NotImplementedError

    def calibrate(self, model: nn.Module, temperature: float) -> None:
        """From now on the model's own temperature is `temperature` (kept in its checkpoint)."""
        raise NotImplementedError

    def progress(self, seen: int) -> dict[str, float]:
        return {self.progress_key: seen}

    def amount(self, seen: int) -> str:
        return f"{seen:,} texts"
