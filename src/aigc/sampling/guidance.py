"""Conditions (class labels, prompts) and classifier-free guidance (Ho & Salimans 2022), as wrappers that return a
denoiser."""

from __future__ import annotations

import torch

from aigc.sampling.samplers import DenoiserFn


def conditioned(denoiser, labels: torch.Tensor | None, guidance: float = 1.0) -> DenoiserFn:
    """Bind conditions [N, ...] (labels, prompt ids; or None) to D(x, sigma, labels); with guidance w != 1 return
    the guided denoiser D_uncond + w * (D_cond - D_uncond), evaluating both halves in one batch (the network says
    what its unconditional input is). w = 1 is plain conditioning."""
    if labels is None or guidance == 1.0:
        return lambda x, sigma: denoiser(x, sigma, labels)
    both_labels = torch.cat([labels, denoiser.net.null_condition(labels)])

    def guided(x: torch.Tensor, sigma: float) -> torch.Tensor:
        d_cond, d_uncond = denoiser(torch.cat([x, x]), sigma, both_labels).chunk(2)
        return d_uncond + guidance * (d_cond - d_uncond)

    return guided
