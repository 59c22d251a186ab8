"""Per-sample random streams: image k depends only on its own seed, whatever the batch it is drawn in."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aigc.core.errors import UserError


class PerSampleNoise:
    """One torch.Generator per seed; each call draws every sample's slice from its own generator."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.generators = [torch.Generator(self.device).manual_seed(int(seed)) for seed in seeds]

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """Standard normal [len(seeds), *shape], float32."""
        return torch.stack([torch.randn(tuple(shape), generator=g, device=self.device) for g in self.generators])

    def truncated_randn(self, shape: Sequence[int], threshold: float) -> torch.Tensor:
        """Standard normal truncated to [-threshold, threshold]: entries outside are redrawn from the sample's own
        generator until none is left (BigGAN's truncation trick), so each sample still depends only on its seed."""
        samples = []
        for generator in self.generators:
            z = torch.randn(tuple(shape), generator=generator, device=self.device)
            outside = z.abs() > threshold
            while outside.any():
                z[outside] = torch.randn(int(outside.sum()), generator=generator, device=self.device)
                outside = z.abs() > threshold
            samples.append(z)
        return torch.stack(samples)

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        return self.randn(like.shape[1:]).to(like.dtype)


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    seeds = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                first, last = part.split("-", 1)
                seeds.extend(range(int(first), int(last) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"bad --seeds {text!r}; write e.g. 0-63 or 1,5,9") from None
    if not seeds or min(seeds) < 0 or max(seeds) >= 2**63:
        raise UserError(f"bad --seeds {text!r}; seeds are non-negative integers, e.g. 0-63")
    return seeds
