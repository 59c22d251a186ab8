"""Batch augmentations applied on the fly, vectorised over the batch, each drawing from the generator it is given.

`random_flip` augments the training data of diffusion models. `DiffAugment` (Zhao et al. 2020) is differentiable
and is applied to real and generated images alike before a GAN discriminator sees them, so D cannot overfit
a small data set while G still receives gradients through the augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc.core.errors import UserError


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image of [N, C, H, W] left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)


def _uniform(n: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(like.device, like.dtype)


def color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Brightness +-0.5, saturation x[0, 2] (colour images only), contrast x[0.5, 1.5], per image."""
    n = x.shape[0]
    x = x + (_uniform(n, generator, x) - 0.5)[:, None, None, None]
    if x.shape[1] == 3:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (2 * _uniform(n, generator, x))[:, None, None, None] + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(n, generator, x) + 0.5)[:, None, None, None] + mean


def translation(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its side in each direction, filling with zeros."""
    n, _, h, w = x.shape
    pad_h, pad_w = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    shift = torch.rand(n, 2, generator=generator, device=generator.device).to(x.device)
    dy = (shift[:, 0] * (2 * pad_h + 1)).long()  # in [0, 2 pad], i.e. a shift in [-pad, pad]
    dx = (shift[:, 1] * (2 * pad_w + 1)).long()
    padded = F.pad(x, [pad_w, pad_w, pad_h, pad_h])
    rows = torch.arange(h, device=x.device)[None, :, None] + dy[:, None, None]  # [N, H, 1]
    cols = torch.arange(w, device=x.device)[None, None, :] + dx[:, None, None]  # [N, 1, W]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of `ratio` of the side at a random centre in each image."""
    n, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre = torch.rand(n, 2, generator=generator, device=generator.device).to(x.device)
    top = (centre[:, 0] * h).long()[:, None, None] - size_h // 2
    left = (centre[:, 1] * w).long()[:, None, None] - size_w // 2
    rows = torch.arange(h, device=x.device)[None, :, None] - top
    cols = torch.arange(w, device=x.device)[None, None, :] - left
    inside = (rows >= 0) & (rows < size_h) & (cols >= 0) & (cols < size_w)
    return x * (~inside)[:, None].to(x.dtype)


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(text: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); '' or 'none' -> ()."""
    names = tuple(name.strip() for name in text.split(",") if name.strip() and name.strip() != "none")
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise UserError(f"unknown augmentation {unknown[0]!r}; use a comma list of {', '.join(AUGMENTATIONS)} or none")
    return names


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    for name in policy:
        x = AUGMENTATIONS[name](x, generator)
    return x
