"""Preconditioning: wraps a network F into a denoiser D(x, sigma, labels) (Karras et al. 2022, Table 1).

x lives in the "variance exploding" frame: x = y + sigma * n for clean data y in [-1, 1]. Losses and samplers
only ever see D; the two parameterisations differ in how they scale F's input and output:
- `edm`: D = c_skip * x + c_out * F(c_in * x, ln(sigma) / 4), with sigma_data the data's standard deviation.
- `vp`: the seed's DDPM (Ho et al. 2020): F predicts the noise epsilon of x_t = sqrt(abar_t) y + sqrt(1 - abar_t) n,
  conditioned on the discrete timestep t, over a linear beta schedule. In this frame sigma_t = sqrt((1 - abar_t) /
  abar_t), x = x_t / sqrt(abar_t), and D = x - sigma * F(x / sqrt(1 + sigma^2), t(sigma)). Networks trained
  elsewhere (Stable Diffusion) may predict v = sqrt(abar) n - sqrt(1 - abar) y instead (Salimans & Ho 2022), for
  which D = x / (1 + sigma^2) - sigma / sqrt(1 + sigma^2) * F, over the "scaled linear" betas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from aigc.core.config import Config
from aigc.core.errors import ConfigError


@dataclass(frozen=True)
class PrecondConfig(Config):
    kind: Literal["edm", "vp"] = field(
        default="edm", metadata={"help": "edm (Karras et al.) or vp (the seed's DDPM)", "flag": "--precond"}
    )
    sigma_data: float = field(
        default=0.5, metadata={"above": 0.0}
    )  # edm: standard deviation of the training images in [-1, 1]
    sigma_min: float = field(default=0.002, metadata={"above": 0.0})  # edm: the noise range samplers cover
    sigma_max: float = field(default=80.0, metadata={"above": 0.0})
    num_timesteps: int = field(default=1000, metadata={"min": 2})  # vp: the discrete DDPM schedule
    beta_start: float = field(default=1e-4, metadata={"above": 0.0, "below": 1.0})
    beta_end: float = field(default=0.02, metadata={"above": 0.0, "below": 1.0})
    # vp: linear betas (DDPM), or linear in sqrt(beta) (Stable Diffusion's "scaled_linear")
    beta_schedule: Literal["linear", "scaled_linear"] = "linear"
    prediction: Literal["epsilon", "v"] = "epsilon"  # vp: what F predicts

    def check(self) -> None:
        if self.sigma_min >= self.sigma_max:
            raise ConfigError("sigma_min", self.sigma_min, f"must be below sigma_max ({self.sigma_max})")


def vp_sigmas(config: PrecondConfig) -> torch.Tensor:
    """sigma_t for t = 0..T-1 of the DDPM schedule, float64 [T], increasing."""
    if config.beta_schedule == "scaled_linear":
        roots = torch.linspace(config.beta_start**0.5, config.beta_end**0.5, config.num_timesteps, dtype=torch.float64)
        betas = roots**2
    else:
        betas = torch.linspace(config.beta_start, config.beta_end, config.num_timesteps, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


class Denoiser(nn.Module):
    """D(x, sigma, labels): x [N, ...] float (images [N, C, H, W], clips [N, C, T, H, W], latents), sigma [N]
    or scalar, labels [N] int64 or None -> D of x's shape; sigma broadcasts over x's trailing dimensions.

    `sigma_min` / `sigma_max` bound the noise levels the network was trained for; samplers start at sigma_max.
    """

    compute_dtype = torch.float32  # inference under autocast to this dtype when lower (bf16 checkpoints)

    def __init__(self, net: nn.Module, config: PrecondConfig):
        super().__init__()
        self.net = net
        self.config = config
        if config.kind == "vp":
            self.register_buffer("timestep_sigmas", vp_sigmas(config), persistent=False)
            self.sigma_min = float(self.timestep_sigmas[0])
            self.sigma_max = float(self.timestep_sigmas[-1])
        else:
            self.sigma_min, self.sigma_max = config.sigma_min, config.sigma_max

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, labels: torch.Tensor | None = None):
        # float64 until c_noise is formed, so a table sigma maps back to its exact timestep
        sigma64 = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1).expand(x.shape[0])
        sigma = sigma64.float().reshape(-1, *[1] * (x.ndim - 1))
        if self.config.kind == "edm":
            sd = self.config.sigma_data
            c_skip = sd**2 / (sigma**2 + sd**2)
            c_out = sigma * sd / (sigma**2 + sd**2).sqrt()
            c_in = 1 / (sd**2 + sigma**2).sqrt()
            c_noise = (sigma64.log() / 4).float()
        else:
            c_in = 1 / (sigma**2 + 1).sqrt()
            c_skip, c_out = (c_in**2, -sigma * c_in) if self.config.prediction == "v" else (1.0, -sigma)
            c_noise = self.sigma_to_timestep(sigma64)
        f = self.net((c_in * x).to(x.dtype), c_noise, labels)
        return c_skip * x + c_out * f.float()

    def sigma_to_timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous t with sigma_t = sigma, by linear interpolation of log sigma over the discrete table
        (exact at the table's own values, as diffusers' `_sigma_to_t`)."""
        log_table = self.timestep_sigmas.log()
        log_sigma = sigma.double().clamp(self.sigma_min, self.sigma_max).log()
        upper = torch.searchsorted(log_table, log_sigma).clamp(1, len(log_table) - 1)
        lo, hi = log_table[upper - 1], log_table[upper]
        t = (upper - 1) + (log_sigma - lo) / (hi - lo)
        return t.float()

    def initial_noise_scale(self, sigma_max: float) -> float:
        """Standard deviation of x at the first noise level: the prior samplers draw from.

        Under vp this is sqrt(1 + sigma^2) (x_T ~ N(0, I) in the DDPM frame); edm uses sigma itself.
        """
        return (1 + sigma_max**2) ** 0.5 if self.config.kind == "vp" else sigma_max
