"""Samplers as pure functions `sample_<name>(denoiser, x, sigmas, *, noise)` (k-diffusion's shape).

`denoiser(x, sigma) -> D` estimates the clean data at noise level sigma; x [N, ...] starts at sigmas[0];
`sigmas` [steps + 1] is decreasing and ends in 0; `noise(x) -> randn_like(x)` feeds the stochastic samplers
(per-sample seeded, see core/rng.py). All work in the variance-exploding frame x = y + sigma * n, where the
probability-flow ODE is dx/dsigma = (x - D(x, sigma)) / sigma (Karras et al. 2022, Eq. 3 with s = 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

DenoiserFn = Callable[[torch.Tensor, float], torch.Tensor]
NoiseFn = Callable[[torch.Tensor], torch.Tensor]


def sample_euler(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *, noise: NoiseFn | None = None):
    """Euler steps of the ODE: x_next = x + (sigma_next - sigma) * d. This is DDIM with eta = 0 (Song et al.
    2021, Eq. 12) written in the sigma frame, where DDIM's update becomes exactly this Euler step."""
    for sigma, sigma_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d_cur = (x - denoiser(x, sigma)) / sigma
        x = x + (sigma_next - sigma) * d_cur
    return x


def sample_heun(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *, noise: NoiseFn | None = None):
    """Heun's 2nd-order method (Karras et al. 2022, Algorithm 1): Euler, then the trapezoidal correction
    except on the last step into sigma = 0."""
    for sigma, sigma_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d_cur = (x - denoiser(x, sigma)) / sigma
        x_next = x + (sigma_next - sigma) * d_cur
        if sigma_next > 0:
            d_prime = (x_next - denoiser(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma) * (0.5 * d_cur + 0.5 * d_prime)
        x = x_next
    return x


def sample_dpmpp_2m(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *, noise: NoiseFn | None = None):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) in lambda = -log(sigma): multistep 2nd order from the
    previous denoised estimate; first order on the first step and on the final step into sigma = 0, as
    diffusers' DPMSolverMultistepScheduler does with final_sigmas_type='zero'."""
    old_denoised, h_last = None, None
    for sigma, sigma_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        denoised = denoiser(x, sigma)
        if sigma_next == 0:
            return denoised
        h = math.log(sigma) - math.log(sigma_next)  # lambda_next - lambda
        if old_denoised is None:
            d_eff = denoised
        else:
            r = h_last / h
            d_eff = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (sigma_next / sigma) * x - math.expm1(-h) * d_eff
        old_denoised, h_last = denoised, h
    return x


def ancestral_step(sigma: float, sigma_next: float, eta: float) -> tuple[float, float]:
    """Split a step to sigma_next into a deterministic part down to sigma_down and fresh noise sigma_up, with
    sigma_down^2 + sigma_up^2 = sigma_next^2. eta = 1 is the DDPM posterior q(x_{t-1} | x_t, x_0); eta = 0 is DDIM."""
    sigma_up = min(sigma_next, eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2))
    return math.sqrt(sigma_next**2 - sigma_up**2), sigma_up


def sample_ddim(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise: NoiseFn | None = None,
    eta: float = 0.0,
):
    """DDIM (Song et al. 2021, Eq. 12) with stochasticity eta; eta = 0 is deterministic."""
    for sigma, sigma_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        denoised = denoiser(x, sigma)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        x = denoised + sigma_down * (x - denoised) / sigma
        if sigma_up > 0:
            x = x + sigma_up * noise(x)
    return x


def sample_ddpm(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *, noise: NoiseFn | None = None):
    """Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2, variance beta-tilde): DDIM with eta = 1."""
    return sample_ddim(denoiser, x, sigmas, noise=noise, eta=1.0)


SamplerName = Literal["euler", "heun", "dpmpp-2m", "ddim", "ddpm"]
SAMPLERS: dict[SamplerName, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp-2m": sample_dpmpp_2m,
    "ddim": sample_ddim,
    "ddpm": sample_ddpm,
}


def network_evaluations(sampler: str, steps: int) -> int:
    """How many times a sampler calls the denoiser for `steps` steps (Heun skips its last correction)."""
    return 2 * steps - 1 if sampler == "heun" else steps
