"""What the families that draw with a denoiser D(x, sigma, cond) share (diffusion, text2image): the settings
of the samplers, each family giving its own defaults of the solver and the guidance, and the rule that ties a
schedule to the preconditioning."""

from __future__ import annotations

from dataclasses import dataclass, field

from aigc.core.config import Config
from aigc.core.errors import ConfigError
from aigc.sampling.samplers import SamplerName
from aigc.sampling.schedules import VP_SCHEDULES, Schedule

MAX_STEPS = 1000


@dataclass(frozen=True)
class DenoiserSampleConfig(Config):
    """How outputs are drawn: the defaults of `aigc sample`, the snapshot grids and the service."""

    sampler: SamplerName | None = field(default=None, metadata={"help": "the ODE/SDE solver"})
    steps: int = field(default=10, metadata={"help": "number of sampling steps", "min": 1, "max": MAX_STEPS})
    schedule: Schedule | None = field(
        default=None, metadata={"help": "noise levels: karras, or linspace | leading | trailing (vp models)"}
    )
    guidance: float | None = field(
        default=None, metadata={"help": "classifier-free guidance scale (1: none)", "min": 0.0, "max": 100.0}
    )


def check_schedule(sample: DenoiserSampleConfig, precond) -> None:
    """A vp-only schedule names DDPM timesteps, which an edm model does not have."""
    if sample.schedule in VP_SCHEDULES and precond.kind != "vp":
        raise ConfigError("schedule", sample.schedule, "applies to vp (DDPM) models; use karras")
