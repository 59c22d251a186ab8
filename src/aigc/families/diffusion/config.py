"""The run config of a diffusion model and its sample settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aigc.core.config import Config
from aigc.core.errors import ConfigError
from aigc.families.diffusion.losses import LossConfig
from aigc.families.images import ImageRunConfig
from aigc.models.diffusion import ModelConfig
from aigc.sampling.samplers import SamplerName
from aigc.sampling.schedules import VP_SCHEDULES, Schedule
from aigc.training.optim import TrainConfig

MAX_STEPS = 1000
# A class-conditional model's guidance unless told otherwise: at 1 (none) a 10-minute MNIST model draws digits
# less distinct than real ones, more so the more exactly a sampler follows it (README, "Image quality")
DEFAULT_GUIDANCE = 1.5
# The sampler unless told otherwise follows guidance. At 10 steps on a guided model Euler scored a lower FID than
# dpmpp-2m on every 10-minute MNIST run measured, and a second-space FID as low within noise (it takes precision's
# side, dpmpp-2m recall's); on an unguided one dpmpp-2m scored lower in both spaces, whose samples are too narrow
# under Euler (README, "Image quality")
GUIDED_SAMPLER: SamplerName = "euler"
UNGUIDED_SAMPLER: SamplerName = "dpmpp-2m"


@dataclass(frozen=True)
class DiffusionSampleConfig(Config):
    """How images are drawn: the defaults of `aigc sample`, the snapshot grids and the service."""

    sampler: SamplerName | None = field(
        default=None,
        metadata={"help": f"the ODE/SDE solver (unset: {GUIDED_SAMPLER} if guided, else {UNGUIDED_SAMPLER})"},
    )
    steps: int = field(default=10, metadata={"help": "number of sampling steps", "min": 1, "max": MAX_STEPS})
    schedule: Schedule | None = field(
        default=None, metadata={"help": "noise levels: karras, or linspace | leading | trailing (vp models)"}
    )
    guidance: float | None = field(
        default=None,
        metadata={
            "help": f"classifier-free guidance scale (1: none; unset: {DEFAULT_GUIDANCE} if class-conditional)",
            "min": 0.0,
            "max": 100.0,
        },
    )


@dataclass(frozen=True)
class DiffusionRunConfig(ImageRunConfig):
    family: Literal["diffusion"] = "diffusion"
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    # the rate decays over the last fifth of a known budget (README, "Image quality"); runs written before kept it
    # constant, which is what their configs, lacking the field, still read as
    train: TrainConfig = TrainConfig(lr_schedule="wsd")
    sample: DiffusionSampleConfig = DiffusionSampleConfig()

    def check(self) -> None:
        check_schedule(self.sample, self.model.precond)


def check_schedule(sample: DiffusionSampleConfig, precond) -> None:
    """A vp-only schedule names DDPM timesteps, which an edm model does not have."""
    if sample.schedule in VP_SCHEDULES and precond.kind != "vp":
        raise ConfigError("schedule", sample.schedule, "applies to vp (DDPM) models; use karras")
