"""What a family that labels texts offers the rest of aigc: its class names, the logits of texts, and the
temperature that turns them into calibrated probabilities. `aigc classify`, evaluation and the service's
/v1/classify use these methods and nothing else of the model, so a new labelling family is a subclass and one
registry entry.

Several labelling models of the same labels also make one (`Ensemble`): the mean of their probabilities, which
`aigc eval RUN RUN --ensemble` scores and `aigc serve NAME=RUN+RUN` serves as one model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from aigc.core.errors import UserError
from aigc.families.family import Family


class Ensemble(nn.Module):
    """Labelling models of the same labels as one: the mean of their probabilities, each member's at its own
    temperature (or the request's). `members`: (family, model, run config, source) of each."""

    def __init__(self, members: list[tuple[LabellingFamily, nn.Module, object, str]], labels: tuple[str, ...]):
        super().__init__()
        self.models = nn.ModuleList(model for _, model, _, _ in members)
        self.members, self.labels = members, labels

    @property
    def sources(self) -> list[str]:
        return [source for _, _, _, source in self.members]

    def judged(self, texts: Sequence[str], sample, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [family.judged(model, texts, sample, batch_size) for family, model, _, _ in self.members]
        calibrated, raw = zip(*pairs, strict=True)
        return torch.stack(calibrated).mean(0), torch.stack(raw).mean(0)

    def info(self) -> dict:
        """Its labels, and each member's name (its run's, not a path on the server) and what its family says."""
        members = [{"name": member_name(s), **f.info(m, c)} for f, m, c, s in self.members]
        return {"labels": list(self.labels), "members": members}


def member_name(source: str) -> str:
    """A member's run directory name (and checkpoint file, when it names one inside checkpoints/)."""
    path = Path(source)
    return f"{path.parent.parent.name}/{path.name}" if path.parent.name == "checkpoints" else path.name


def check_member(source, family: Family, labels: tuple[str, ...], first: tuple[str, ...]) -> None:
    """UserError unless an ensemble member (of `family`, with `labels`) labels texts, with the first member's
    labels."""
    if family.modality != "labels":
        raise UserError(f"an ensemble is of classifiers; {source} is a {family.name} run")
    if tuple(labels) != tuple(first):
        raise UserError(
            f"an ensemble's members share their labels; {source} has {', '.join(labels)}, not {', '.join(first)}"
        )


class LabellingFamily(Family):
    """A family whose outputs are class probabilities of texts, each a function of its text alone (never of the
    batch it is labelled in). Its models hold their class names as `labels` and the most tokens they read of a
    text as `context`; subclasses implement `logits`, `temperature` and `calibrate`. The sample config has a
    `temperature` (None: the model's own)."""

    modality: ClassVar[str] = "labels"
    conditions: ClassVar[str] = "texts"
    evaluation: ClassVar[str] = "labels"
    unit: ClassVar[str] = "text"
    progress_key: ClassVar[str] = "texts"

    def labels(self, model: nn.Module) -> tuple[str, ...]:
        """The class names, in the order of the logits."""
        return model.labels

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
        the model's own when that is None (an ensemble's: the mean of its members')."""
        return self.judged(model, texts, sample, batch_size)[0]

    def judged(self, model: nn.Module, texts: Sequence[str], sample, batch_size: int = 64):
        """(probabilities as `classify` gives them, probabilities at temperature 1), from one pass over the texts."""
        if isinstance(model, Ensemble):
            return model.judged(texts, sample, batch_size)
        logits = self.logits(model, texts, batch_size)
        temperature = self.temperature(model) if sample.temperature is None else sample.temperature
        return (logits / temperature).softmax(-1), logits.softmax(-1)

    def info(self, model: nn.Module, config) -> dict:
        """Its labels, context and temperature (an ensemble: its members')."""
        if isinstance(model, Ensemble):
            return model.info()
        return {"labels": list(model.labels), "context": model.context, "temperature": self.temperature(model)}

    def generate(self, model: nn.Module, seeds, conditions=None, sample=None, batch_size: int = 64, **options):
        """The probabilities of the texts `conditions` (one per seed; a label needs no seed): what the service's
        queue hands a labelling model, so that requests merge into batches as image requests do."""
        return self.classify(model, conditions, sample or self.sample_config(), batch_size)

    def progress(self, seen: int) -> dict[str, float]:
        return {self.progress_key: seen}

    def amount(self, seen: int) -> str:
        return f"{seen:,} texts"
