"""The diffusion family: EDM or DDPM denoisers over images, drawn by an ODE/SDE sampler."""

from __future__ import annotations

import dataclasses

import torch

from aigc.core.errors import UserError
from aigc.core.rng import PerSampleNoise
from aigc.families.diffusion.config import (
    DEFAULT_GUIDANCE,
    GUIDED_SAMPLER,
    UNGUIDED_SAMPLER,
    DiffusionRunConfig,
    DiffusionSampleConfig,
)
from aigc.families.images import ImageFamily
from aigc.models.diffusion import build_denoiser, resolve_unet
from aigc.models.precond import Denoiser
from aigc.sampling.guidance import conditioned
from aigc.sampling.samplers import SAMPLERS, SamplerName
from aigc.sampling.schedules import make_sigmas

EXAMPLES = """examples:
  aigc train diffusion --data digits --kimg 150 --out runs/digits
  aigc train diffusion --data mnist --data-dir DIR --minutes 10 --out runs/mnist
  aigc train diffusion --data folder:path/to/photos --image-size 64 --kimg 500
  aigc train diffusion --resume runs/mnist                # continue where it stopped
  aigc train diffusion --resume runs/mnist --kimg 100     # ... and train 100 kimg more
"""


class DiffusionFamily(ImageFamily):
    name = "diffusion"
    help = "a diffusion model (EDM or DDPM)"
    examples = EXAMPLES
    run_config = DiffusionRunConfig
    sample_config = DiffusionSampleConfig
    flag_components = ("data", "model", "model.precond", "loss", "train", "sample")
    unused_flags = frozenset({"train.optimizer"})
    model_type = Denoiser
    remedy = "a lower --lr or a longer --warmup-kimg"

    def upgrade(self, data: dict) -> dict:
        sample = {k: v for k, v in data.get("sample", {}).items() if k != "truncation"}  # 0.1 kept the GAN's
        return {**data, "sample": sample}

    def resolve_model(self, model, dataset):
        model = super().resolve_model(model, dataset)
        return dataclasses.replace(model, unet=resolve_unet(model))

    def training_data(self, config):
        config, data = super().training_data(config)
        # the run's config says what its samples are drawn with
        guidance = resolve_guidance(config.sample.guidance, config.model.num_classes)
        sample = dataclasses.replace(
            config.sample, guidance=guidance, sampler=resolve_sampler(config.sample.sampler, guidance)
        )
        return dataclasses.replace(config, sample=sample), data

    def trainer(self, config, device: torch.device, fresh: bool = True):
        from aigc.families.diffusion.trainer import DiffusionTrainer

        return DiffusionTrainer(config, device)

    def build(self, config) -> Denoiser:
        return build_denoiser(config.model)

    def num_classes(self, model: Denoiser) -> int:
        return model.net.num_classes

    def check_request(self, model: Denoiser, labels, sample: DiffusionSampleConfig) -> None:
        self.check_labels(model, labels)
        if sample.guidance not in (None, 1.0) and not self.num_classes(model):
            raise UserError("guidance needs a class-conditional model; drop --guidance")
        # a vp-only schedule on an edm model: the run config refuses it, and make_sigmas in `drawer` for a bare
        # sample config, before any work

    def drawer(self, model: Denoiser, sample: DiffusionSampleConfig):
        """(noise, labels) -> images in [-1, 1]: the sampler run from the prior at the first noise level."""
        schedule = sample.schedule or ("karras" if model.config.kind == "edm" else "trailing")
        sigmas = make_sigmas(schedule, sample.steps, model)
        guidance = resolve_guidance(sample.guidance, model.net.num_classes)
        sampler = SAMPLERS[resolve_sampler(sample.sampler, guidance)]

        def draw(noise: PerSampleNoise, labels: torch.Tensor | None) -> torch.Tensor:
            x = noise.randn(model.net.image_shape) * model.initial_noise_scale(float(sigmas[0]))
            return sampler(conditioned(model, labels, guidance), x, sigmas, noise=noise)

        return draw


def resolve_guidance(guidance: float | None, num_classes: int) -> float:
    """The guidance scale asked for, or when unset DEFAULT_GUIDANCE for a class-conditional model and 1 (none)
    for an unconditional one."""
    if guidance is not None:
        return guidance
    return DEFAULT_GUIDANCE if num_classes else 1.0


def resolve_sampler(sampler: SamplerName | None, guidance: float) -> SamplerName:
    """The sampler asked for, or when unset the one measured best at that guidance."""
    if sampler is not None:
        return sampler
    return GUIDED_SAMPLER if guidance != 1.0 else UNGUIDED_SAMPLER
