"""Noise-level schedules: pure functions returning decreasing sigma sequences [steps + 1] ending in 0."""

from __future__ import annotations

import typing
from typing import Literal

import torch

from aigc.core.errors import UserError

Schedule = Literal["karras", "linspace", "leading", "trailing"]
SCHEDULES: tuple[Schedule, ...] = typing.get_args(Schedule)
VP_SCHEDULES = SCHEDULES[1:]  # spacings of a discrete DDPM timestep table


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. 2022, Eq. 5:
    sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, i = 0..N-1; then 0."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    inv_rho_min, inv_rho_max = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (inv_rho_max + ramp * (inv_rho_min - inv_rho_max)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def discrete_timesteps(steps: int, num_timesteps: int, spacing: str) -> torch.Tensor:
    """The DDPM timesteps a sampler visits, decreasing, in diffusers' three spacings (Lin et al. 2023, Table 2)."""
    if spacing == "linspace":
        visited = torch.linspace(0, num_timesteps - 1, steps + 1, dtype=torch.float64).round()[1:]
    elif spacing == "leading":
        visited = torch.arange(steps, dtype=torch.float64) * (num_timesteps // steps)
    elif spacing == "trailing":
        visited = torch.arange(num_timesteps, 0, -num_timesteps / steps, dtype=torch.float64).round() - 1
        visited = visited.flip(0)
    else:
        raise UserError(f"unknown timestep spacing {spacing!r}; choose linspace, leading or trailing")
    return visited.flip(0).long()


def timestep_sigmas(table: torch.Tensor, steps: int, spacing: str) -> torch.Tensor:
    """sigma at each visited timestep of a discrete table (float64 [T]), then 0."""
    sigmas = table.double()[discrete_timesteps(steps, len(table), spacing)]
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def make_sigmas(schedule: str, steps: int, denoiser) -> torch.Tensor:
    """The sigma sequence for a denoiser (see models.precond.Denoiser), float64 [steps + 1]."""
    if schedule == "karras":
        return karras_sigmas(steps, denoiser.sigma_min, denoiser.sigma_max)
    if schedule in SCHEDULES:
        if denoiser.config.kind != "vp":
            raise UserError(f"schedule {schedule!r} needs a vp (DDPM) model; use --schedule karras")
        return timestep_sigmas(denoiser.timestep_sigmas, steps, schedule)
    raise UserError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
