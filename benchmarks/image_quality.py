"""The image families against each other in one run: the diffusion default and the GAN default trained on MNIST
for the same wall-clock budget (and the GAN for half of it), each scored by `aigc eval RUN --n N` in both
feature spaces (`fid`, `fid_2`) with precision and recall; then the diffusion model's FID against the number of
network evaluations of its default sampler, the default sampler against the one it was chosen over, what its
classifier-free guidance costs in sampling speed, and where its error lives noise level by noise level
(denoiser.py)."""

from __future__ import annotations

import dataclasses
import time

from aigc.families.registry import generate, load_model
from denoiser import bench_denoiser
from harness import RESULTS, RUNS, SAMPLING_BATCH, aigc, score, train_on_mnist

NFES = (5, 10, 20, 35)
# the diffusion default's sampler was chosen between these (docs/benchmarks.md, "Image quality")
SAMPLER_CANDIDATES = ("euler", "dpmpp-2m")


def bench_image_quality(minutes: float, data_dir: str, n: int, nfe_n: int) -> dict:
    runs = {
        "diffusion": (RUNS / "bench-quality-diffusion", minutes, ["diffusion"]),
        "gan": (RUNS / "bench-quality-gan", minutes, ["gan"]),
        "gan-half": (RUNS / "bench-quality-gan-half", minutes / 2, ["gan"]),
    }
    rows, scored = [], {}
    for name, (run, budget, family) in runs.items():
        last = train_on_mnist(run, budget, data_dir, *family)
        grid = RESULTS / f"quality_{name}_grid.png"
        aigc("sample", run, "--n", 100, "--seeds", "0-99", "--out", grid)
        scored[name], provenance = score(run, data_dir, n)
        row = {"name": name, "minutes": budget, "kimg": last["kimg"], "img_per_s": round(last["img_per_s"], 1)}
        rows.append({**row, **scored[name], "grid": grid.name})
        print(rows[-1], flush=True)
    diffusion = rows[0]
    for row in rows:
        row["fid_ratio_to_diffusion"] = round(row["fid"] / diffusion["fid"], 3)
        row["fid_2_ratio_to_diffusion"] = round(row["fid_2"] / diffusion["fid_2"], 3)
    return {
        "minutes": minutes,
        "n": n,
        **provenance,
        "rows": rows,
        "nfe": nfe_curve(runs["diffusion"][0], data_dir, nfe_n),
        "samplers": sampler_choice(runs["diffusion"][0], scored["diffusion"], data_dir, n),
        "guidance_speed": guidance_speed(runs["diffusion"][0], nfe_n),
        "denoiser": bench_denoiser(runs["diffusion"][0], data_dir, nfe_n),
    }


def nfe_curve(run, data_dir: str, n: int) -> list[dict]:
    """`aigc eval RUN --steps S` for each NFE of the run's own sampler (one evaluation per step)."""
    rows = []
    for nfe in NFES:
        figures, _ = score(run, data_dir, n, "--steps", nfe)
        rows.append({"nfe": nfe, **figures})
        print(rows[-1], flush=True)
    return rows


def sampler_choice(run, default_figures: dict, data_dir: str, n: int) -> list[dict]:
    """Each candidate sampler at the run's step count, `aigc eval RUN --n N --sampler S` from the same seeds (the
    default's figures are those already scored)."""
    _, config = load_model(run)
    rows = []
    for sampler in SAMPLER_CANDIDATES:
        if sampler == config.sample.sampler:
            figures = default_figures
        else:
            figures, _ = score(run, data_dir, n, "--sampler", sampler)
        rows.append({"sampler": sampler, "steps": config.sample.steps, **figures})
        print(rows[-1], flush=True)
    return rows


def guidance_speed(run, n: int, rounds: int = 2) -> list[dict]:
    """Images/s of the run's default sampler unguided and at its recorded guidance (a guided step evaluates the
    conditional and unconditional halves in one batch), alternating `rounds` times and keeping each one's best."""
    model, config = load_model(run)
    settings = {
        guidance: dataclasses.replace(config.sample, guidance=guidance) for guidance in (1.0, config.sample.guidance)
    }
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(rounds):
        for guidance, sample in settings.items():
            started = time.perf_counter()
            generate(model, range(n), sample=sample, batch_size=SAMPLING_BATCH)
            best[guidance] = min(best[guidance], time.perf_counter() - started)
    rows = [
        {"guidance": guidance, "steps": config.sample.steps, "img_per_s": round(n / s, 1)}
        for guidance, s in best.items()
    ]
    print(rows, flush=True)
    return rows
