"""The generation loop every family shares: seeds in batches, each batch drawn from per-sample noise by the
family's `draw`, converted to uint8. `aigc.families.registry.generate` puts a model's family in front of it; the
CLI, evaluation and the service all go through that, so they can never disagree about what a model produces."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm import tqdm

from aigc.core.images import to_uint8
from aigc.core.rng import PerSampleNoise


def generate_batches(
    draw: Callable[[PerSampleNoise, torch.Tensor | None], torch.Tensor],
    seeds: Sequence[int],
    conditions: torch.Tensor | None,
    batch_size: int,
    device: torch.device,
    compute_dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> torch.Tensor:
    """uint8 [len(seeds), ...]: `draw(noise, conditions)` on consecutive batches of seeds (and their rows of
    `conditions`), under autocast when the model computes in a reduced precision."""
    reduced = compute_dtype != torch.float32
    outputs = []
    starts = range(0, len(seeds), batch_size)
    # no tqdm object at all without a bar: its multiprocessing lock outlives uvicorn's spawned workers
    for start in tqdm(starts, desc="sampling", unit="batch") if progress else starts:
        batch_seeds = seeds[start : start + batch_size]
        condition = None if conditions is None else conditions[start : start + batch_size].to(device)
        with torch.autocast(device.type, compute_dtype, enabled=reduced):
            outputs.append(to_uint8(draw(PerSampleNoise(batch_seeds, device), condition)).cpu())
    return torch.cat(outputs)
