"""Few-step sampling: FID against the number of network evaluations (NFE) for every sampler on one trained MNIST
model, the images/s of each, and the memory of drawing 10,000 images with `aigc sample`."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from aigc.families.registry import generate, load_model
from aigc.sampling.samplers import SAMPLERS, network_evaluations
from harness import RUNS, SAMPLING_BATCH, monitored, save_npz, score

NFES = (5, 10, 20, 35, 100)


def steps_for(sampler: str, nfe: int) -> int:
    """The most steps whose network evaluations do not exceed `nfe` (Heun evaluates twice per step but once on
    its last), and at least one."""
    return max(1, (nfe + 1) // 2 if sampler == "heun" else nfe)


def bench_sampling(run: Path, data_dir: str, n: int) -> dict:
    model, config = load_model(run)
    rows = []
    for sampler in SAMPLERS:
        for nfe in NFES:
            sample = dataclasses.replace(config.sample, sampler=sampler, steps=steps_for(sampler, nfe))
            started = time.perf_counter()
            images = generate(model, range(n), sample=sample, batch_size=SAMPLING_BATCH)
            seconds = time.perf_counter() - started
            figures, provenance = score(save_npz(images.numpy(), RUNS / "bench-sampling" / "images.npz"), data_dir, n)
            rows.append(
                {
                    "sampler": sampler,
                    "steps": sample.steps,
                    "nfe": network_evaluations(sampler, sample.steps),
                    "img_per_s": round(n / seconds, 1),
                    **figures,
                }
            )
            print(rows[-1], flush=True)
    default = [r for r in rows if r["sampler"] == config.sample.sampler]
    at_100 = next(r for r in default if r["nfe"] == max(NFES))
    for row in default:
        row["fid_ratio_to_own_100_nfe"] = round(row["fid"] / at_100["fid"], 3)
    folder = f"{RUNS / 'bench-sampling' / '10k'}/"  # the trailing slash asks for one PNG per seed
    _, memory = monitored("sample", run, "--n", 10_000, "--out", folder, "--batch-size", SAMPLING_BATCH)
    return {
        "run": str(run),
        "default_sampler": config.sample.sampler,
        "n": n,
        **provenance,
        "rows": rows,
        "sample_10k_memory": memory,
    }
