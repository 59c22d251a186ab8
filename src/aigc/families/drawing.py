"""What the families that draw images share (diffusion, gan, text2image, the autoencoder's reconstructions): a
batch drawn from per-sample noise by the family's `drawer`, batch after batch, labels by default seed % classes,
and a snapshot's grid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from aigc.core.device import model_device
from aigc.core.errors import UserError
from aigc.core.images import save_grid
from aigc.core.rng import PerSampleNoise
from aigc.families.family import Family
from aigc.sampling.pipeline import generate_batches

# (per-sample noise, conditions [N, ...] or None) -> a batch in model space (images: float [N, C, H, W] in [-1, 1])
Draw = Callable[[PerSampleNoise, torch.Tensor | None], torch.Tensor]


class DrawingFamily(Family):
    """A family whose outputs are images drawn from noise; subclasses implement `drawer`."""

    def save_samples(self, model: nn.Module, config, device: torch.device, stem: Path) -> None:
        """What a snapshot shows of the model: the outputs of the fixed seeds, at `stem` plus a suffix."""
        seeds = range(config.train.grid_size)
        save_grid(self.generate(model, seeds, sample=config.sample, device=device), stem.with_suffix(".png"))

    def drawer(self, model: nn.Module, sample) -> Draw:
        """How `model` draws one batch with the settings `sample`."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(
        self,
        model: nn.Module,
        seeds: Sequence[int],
        labels: torch.Tensor | Sequence[int] | None = None,
        sample=None,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Draw one image per seed: uint8 [len(seeds), C, H, W]. Output k depends only on seeds[k] and its label (and
        the settings), never on the batch it is drawn in. Labels default to seed % num_classes when the model
        is class-conditional; `sample` to the family's default settings."""
        sample = self.sample_config() if sample is None else sample
        device = torch.device(device) if device else model_device(model)
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.long)
            if len(labels) != len(seeds):
                raise UserError(f"{len(labels)} labels for {len(seeds)} seeds; give one label per seed")
        self.check_request(model, labels, sample)
        if labels is None:
            labels = self.default_labels(model, seeds)
        was_training = model.training
        model.eval()  # BatchNorm in a GAN generator uses its running statistics: outputs independent of the batch
        try:
            draw = self.drawer(model, sample)
            dtype = getattr(model, "compute_dtype", torch.float32)  # lower for bf16-compressed models
            return generate_batches(draw, seeds, labels, batch_size, device, dtype, progress)
        finally:
            model.train(was_training)

    def default_labels(self, model: nn.Module, seeds: Sequence[int]) -> torch.Tensor | None:
        """A conditional model draws class seed % num_classes by default, so every grid shows all classes."""
        classes = self.num_classes(model)
        return torch.tensor([s % classes for s in seeds]) if classes else None
