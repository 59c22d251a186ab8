"""generate(): the one way images come out of a diffusion model. The CLI, evaluation and the service use it,
so they can never disagree about what a model produces."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from aigc.config import RunConfig
from aigc.errors import UserError
from aigc.models.diffusion import build_denoiser
from aigc.models.precond import Denoiser
from aigc.sampling.guidance import conditioned
from aigc.sampling.rng import PerSampleNoise
from aigc.sampling.samplers import SAMPLERS, SampleConfig
from aigc.sampling.schedules import make_sigmas
from aigc.training.checkpoint import latest_checkpoint, load_checkpoint
from aigc.utils.images import to_uint8

MAX_STEPS = 1000


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Denoiser, RunConfig]:
    """The EMA denoiser of a run directory (its newest complete checkpoint) or of a checkpoint file."""
    path = Path(path)
    weights = latest_checkpoint(path) if path.is_dir() else path
    checkpoint = load_checkpoint(weights)
    denoiser = build_denoiser(checkpoint.config.model)
    try:
        denoiser.load_state_dict(checkpoint.ema)
    except RuntimeError:
        raise UserError(f"{weights}: weights do not match the model its config describes (incompatible)") from None
    # channels-last convolutions are markedly faster for inference on CPUs
    denoiser = denoiser.to(device, memory_format=torch.channels_last)
    return denoiser.eval().requires_grad_(False), checkpoint.config


def default_labels(denoiser: Denoiser, seeds: Sequence[int]) -> torch.Tensor | None:
    """A conditional model draws class seed % num_classes by default, so every grid shows all classes."""
    num_classes = denoiser.net.num_classes
    return torch.tensor([s % num_classes for s in seeds]) if num_classes else None


def check_labels(denoiser: Denoiser, class_labels: torch.Tensor | None, guidance: float) -> None:
    num_classes = denoiser.net.num_classes
    if class_labels is not None:
        if not num_classes:
            raise UserError("this model is unconditional; drop --class (train with labels to use classes)")
        if int(class_labels.min()) < 0 or int(class_labels.max()) >= num_classes:
            raise UserError(f"class out of range; this model has classes 0..{num_classes - 1}")
    if guidance != 1.0 and not num_classes:
        raise UserError("guidance needs a class-conditional model; drop --guidance")


@torch.no_grad()
def generate(
    model: Denoiser | str | Path,
    seeds: Sequence[int],
    class_labels: torch.Tensor | Sequence[int] | None = None,
    sample: SampleConfig = SampleConfig(),
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Draw one image per seed: uint8 [len(seeds), C, H, W]. Image k depends only on seeds[k] and its label
    (and the settings), never on the batch it is drawn in. Labels default to seed % num_classes when the
    model is class-conditional."""
    if isinstance(model, (str, Path)):
        model, _ = load_model(model, device or "cpu")
    device = torch.device(device) if device else next(model.parameters()).device
    if sample.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {sample.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if not 1 <= sample.steps <= MAX_STEPS:
        raise UserError(f"--steps {sample.steps} out of range; use 1..{MAX_STEPS}")
    if class_labels is not None:
        class_labels = torch.as_tensor(class_labels, dtype=torch.long)
        if len(class_labels) != len(seeds):
            raise UserError(f"{len(class_labels)} labels for {len(seeds)} seeds; give one label per seed")
    check_labels(model, class_labels, sample.guidance)
    if class_labels is None:
        class_labels = default_labels(model, seeds)
    schedule = sample.schedule or ("karras" if model.config.kind == "edm" else "trailing")
    sigmas = make_sigmas(schedule, sample.steps, model)
    images = []
    for start in tqdm(range(0, len(seeds), batch_size), desc="sampling", disable=not progress, unit="batch"):
        batch_seeds = seeds[start : start + batch_size]
        labels = None if class_labels is None else class_labels[start : start + batch_size].to(device)
        noise = PerSampleNoise(batch_seeds, device)
        x = noise.randn(model.net.image_shape) * model.initial_noise_scale(float(sigmas[0]))
        denoiser = conditioned(model, labels, sample.guidance)
        x = SAMPLERS[sample.sampler](denoiser, x, sigmas, noise=noise)
        images.append(to_uint8(x).cpu())
    return torch.cat(images)
