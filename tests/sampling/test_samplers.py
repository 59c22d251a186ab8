"""Samplers against an analytic denoiser and against diffusers' schedulers on the same VP model."""

import math

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import nn

from aigc.core.rng import PerSampleNoise
from aigc.models.precond import Denoiser, PrecondConfig
from aigc.sampling.samplers import SAMPLERS, network_evaluations
from aigc.sampling.schedules import karras_sigmas, timestep_sigmas

MU, S = 0.3, 0.5  # data ~ N(MU, S^2) per pixel


def gaussian_denoiser(x, sigma):
    """The exact E[y | x] for y ~ N(MU, S^2), x = y + sigma n."""
    return MU + S**2 / (S**2 + sigma**2) * (x - MU)


@pytest.mark.parametrize(
    ("name", "steps"), [("euler", 200), ("heun", 40), ("dpmpp-2m", 40), ("ddim", 200), ("ddpm", 400)]
)
def test_samplers_reach_the_data_distribution(name, steps):
    sigmas = karras_sigmas(steps, 0.002, 80.0)
    seeds = range(4000)
    noise = PerSampleNoise(seeds)
    x = noise.randn((1, 1, 1)) * math.sqrt(80.0**2 + S**2)
    out = SAMPLERS[name](gaussian_denoiser, x.double(), sigmas, noise=noise)
    assert out.mean().item() == pytest.approx(MU, abs=0.03)
    assert out.std().item() == pytest.approx(S, rel=0.05)


@pytest.mark.parametrize(("name", "order"), [("euler", 1), ("heun", 2), ("dpmpp-2m", 2)])
def test_deterministic_samplers_converge_at_their_order(name, order):
    # The exact ODE solution maps x_T to MU + S / sqrt(S^2 + sigma_max^2) * (x_T - MU).
    x = torch.linspace(-160, 160, 9, dtype=torch.float64)
    exact = MU + S / math.sqrt(S**2 + 80.0**2) * (x - MU)
    errors = [
        (SAMPLERS[name](gaussian_denoiser, x, karras_sigmas(n, 0.002, 80.0)) - exact).abs().max().item()
        for n in (20, 40, 80)
    ]
    assert errors[2] < errors[1] < errors[0]
    ratio = errors[1] / errors[2]  # halving the step size divides the error by about 2^order
    assert 2**order * 0.7 < ratio < 2**order * 1.4


def test_network_evaluations():
    assert network_evaluations("heun", 18) == 35 and network_evaluations("dpmpp-2m", 10) == 10


class ToyEpsilonNet(nn.Module):
    """A fixed, nonlinear epsilon-model eps(x_t, t) standing in for a trained DDPM network."""

    num_classes = 0

    def forward(self, x, c_noise, labels=None):
        t = c_noise.float()[:, None, None, None]
        return 0.5 * torch.tanh(x) * torch.cos(t / 300) + 0.1 * torch.sin(3 * x + t / 100)


def run_diffusers(scheduler, steps, x, generator=None):
    scheduler.set_timesteps(steps)
    net = ToyEpsilonNet()
    for t in scheduler.timesteps:
        eps = net(x, torch.full((x.shape[0],), float(t)))
        kwargs = {"generator": generator} if generator is not None else {}
        x = scheduler.step(eps, t, x, **kwargs).prev_sample
    return x


def run_ours(name, steps, spacing, x_vp, noise=None):
    denoiser = Denoiser(ToyEpsilonNet(), PrecondConfig(kind="vp"))
    sigmas = timestep_sigmas(denoiser.timestep_sigmas, steps, spacing)
    x = x_vp * denoiser.initial_noise_scale(float(sigmas[0]))
    return SAMPLERS[name](lambda x, sigma: denoiser(x, sigma), x, sigmas, noise=noise)


@pytest.mark.parametrize("steps", [5, 10, 25])
def test_dpmpp_2m_matches_diffusers_dpm_solver_multistep(steps):
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    expected = run_diffusers(DPMSolverMultistepScheduler(), steps, x.clone())
    assert torch.allclose(run_ours("dpmpp-2m", steps, "linspace", x), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_ddim_matches_diffusers_ddim(spacing):
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    expected = run_diffusers(DDIMScheduler(clip_sample=False, timestep_spacing=spacing), 20, x.clone())
    assert torch.allclose(run_ours("ddim", 20, spacing, x), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("steps", [10, 1000])
def test_ddpm_matches_diffusers_ddpm_with_the_same_noise(steps):
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    expected = run_diffusers(DDPMScheduler(clip_sample=False), steps, x.clone(), torch.Generator().manual_seed(7))
    shared = torch.Generator().manual_seed(7)
    ours = run_ours("ddpm", steps, "leading", x, noise=lambda like: torch.randn(like.shape, generator=shared))
    assert torch.allclose(ours, expected, atol=1e-3, rtol=1e-3)
