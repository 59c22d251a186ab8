"""Diffusion training objectives: each returns a per-sample loss [N] for a denoiser D(x, sigma, labels) of
models/precond.py, whatever family trains it (diffusion, text2image).

Both draw their noise from the generator they are given, so a training run is reproducible and resumable, and
both work on data of any shape [N, ...] (images, clips, latents): sigma broadcasts over the trailing dimensions
and the loss averages over them. Conditions (class labels, prompts) are replaced by the unconditional one with
probability `label_dropout`, which trains the unconditional denoiser that classifier-free guidance needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from aigc.core.config import Config
from aigc.models.precond import Denoiser


@dataclass(frozen=True)
class LossConfig(Config):
    p_mean: float = -1.2  # edm: ln(sigma) ~ N(p_mean, p_std^2) (Karras et al. 2022, Table 1)
    p_std: float = field(default=1.2, metadata={"above": 0.0})
    label_dropout: float = field(
        default=0.1, metadata={"help": "share of labels or prompts dropped for guidance", "min": 0.0, "below": 1.0}
    )


def drop_conditions(conditions: torch.Tensor | None, net, p: float, generator: torch.Generator):
    """Each example's condition (a label, a prompt's ids) replaced by the network's unconditional one with
    probability p."""
    if conditions is None or p == 0:
        return conditions
    drop = torch.rand(conditions.shape[:1], generator=generator, device=generator.device).to(conditions.device) < p
    return torch.where(per_sample(drop, conditions), net.null_condition(conditions), conditions)


def standard_normal(shape, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[N] -> [N, 1, ..., 1], broadcasting over the trailing dimensions of `like`."""
    return values.reshape(-1, *[1] * (like.ndim - 1))


def sample_mean(values: torch.Tensor) -> torch.Tensor:
    """[N, ...] -> [N]: the mean over everything but the batch dimension."""
    return values.mean(dim=tuple(range(1, values.ndim)))


class EDMLoss:
    """lambda(sigma) * ||D(y + sigma n, sigma) - y||^2 with lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2
    and log-normal sigma (Karras et al. 2022, Eq. 2 and Sec. 5)."""

    def __init__(self, config: LossConfig, sigma_data: float):
        self.config, self.sigma_data = config, sigma_data

    def __call__(self, denoiser: Denoiser, y: torch.Tensor, labels, generator: torch.Generator) -> torch.Tensor:
        sd = self.sigma_data
        log_sigma = self.config.p_mean + self.config.p_std * standard_normal(y.shape[:1], y, generator)
        sigma = per_sample(log_sigma.exp(), y)
        weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
        labels = drop_conditions(labels, denoiser.net, self.config.label_dropout, generator)
        x = y + sigma * standard_normal(y.shape, y, generator)
        return sample_mean(weight * (denoiser(x, sigma.flatten(), labels) - y) ** 2)


class VPLoss:
    """The DDPM objective ||eps - eps_theta(x_t, t)||^2 with t uniform over the discrete timesteps (Ho et al. 2020,
    Eq. 14). In the sigma frame eps_theta = (x - D) / sigma, hence the weight 1 / sigma^2."""

    def __init__(self, config: LossConfig):
        self.config = config

    def __call__(self, denoiser: Denoiser, y: torch.Tensor, labels, generator: torch.Generator) -> torch.Tensor:
        table = denoiser.timestep_sigmas
        t = torch.randint(len(table), y.shape[:1], generator=generator, device=generator.device).to(y.device)
        sigma = per_sample(table[t].float(), y)
        labels = drop_conditions(labels, denoiser.net, self.config.label_dropout, generator)
        x = y + sigma * standard_normal(y.shape, y, generator)
        return sample_mean((denoiser(x, sigma.flatten(), labels) - y) ** 2 / sigma**2)


def make_loss(config: LossConfig, denoiser: Denoiser):
    if denoiser.config.kind == "edm":
        return EDMLoss(config, denoiser.config.sigma_data)
    return VPLoss(config)
