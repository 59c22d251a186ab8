"""The run config of a diffusion model and its sample settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aigc.families.denoising import DenoiserSampleConfig, check_schedule
from aigc.families.images import ImageRunConfig
from aigc.models.diffusion import ModelConfig
from aigc.models.losses import LossConfig
from aigc.sampling.samplers import SamplerName
from aigc.training.config import TrainConfig

# A class-conditional model's guidance unless told otherwise: at 1 (none) a 10-minute MNIST model draws digits
# less distinct than real ones, more so the more exactly a sampler follows it (docs/benchmarks.md, "Image quality")
DEFAULT_GUIDANCE = 1.5
# The sampler unless told otherwise follows guidance. At 10 steps on a guided model Euler scored a lower FID than
# dpmpp-2m on every 10-minute MNIST run measured, and a second-space FID as low within noise (it takes precision's
# side, dpmpp-2m recall's); on an unguided one dpmpp-2m scored lower in both spaces, whose samples are too narrow
# under Euler (docs/benchmarks.md, "Image quality")
GUIDED_SAMPLER: SamplerName = "euler"
UNGUIDED_SAMPLER: SamplerName = "dpmpp-2m"


@dataclass(frozen=True)
class DiffusionSampleConfig(DenoiserSampleConfig):
    """How images are drawn: the defaults of `aigc sample`, the snapshot grids and the service."""

    sampler: SamplerName | None = field(
        default=None,
        metadata={"help": f"the ODE/SDE solver (unset: {GUIDED_SAMPLER} if guided, else {UNGUIDED_SAMPLER})"},
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
    # the rate decays over the last fifth of a known budget (docs/benchmarks.md, "Image quality"); runs written
    # before kept it constant, which is what their configs, lacking the field, still read as
    train: TrainConfig = TrainConfig(lr_schedule="wsd")
    sample: DiffusionSampleConfig = DiffusionSampleConfig()

    def check(self) -> None:
        check_schedule(self.sample, self.model.precond)
        self.train.check_optimizer("adamw")
