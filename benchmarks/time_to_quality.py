"""The performance issue's headline: aigc's default MNIST diffusion recipe against the diffusers reference
(reference_diffusers.py, settings (a) `default` and (b) `tuned`), each trained for the same wall-clock budget,
then n images drawn with each one's sampler and scored by `aigc eval` with the shipped MNIST extractor. Sampling
is timed separately.

aigc's default recipe is class-conditional (image k is drawn as class k % 10); the reference is unconditional, so
aigc also runs with `--no-class-conditional` for a like-for-like row.
"""

from __future__ import annotations

import time

import torch

import reference_diffusers as reference
from aigc.core.images import save_grid
from aigc.families.registry import generate, load_model
from aigc.sampling.samplers import network_evaluations
from harness import RESULTS, RUNS, SAMPLING_BATCH, aigc, save_npz, score, train_on_mnist

AIGC_RUNS = {"aigc": (), "aigc-unconditional": ("--no-class-conditional",)}
AIGC_DEFAULT_RUN = "bench-ttq-aigc"


def run_aigc(name: str, flags: tuple[str, ...], minutes: float, data_dir: str, n: int) -> dict:
    run = RUNS / f"bench-ttq-{name}"
    last = train_on_mnist(run, minutes, data_dir, "diffusion", *flags)
    model, config = load_model(run)
    started = time.perf_counter()
    images = generate(model, range(n), sample=config.sample, batch_size=SAMPLING_BATCH)
    seconds = time.perf_counter() - started
    return {
        "name": name,
        "kimg": last["kimg"],
        "img_per_s": round(last["img_per_s"], 1),
        "sampler": config.sample.sampler,
        "nfe": network_evaluations(config.sample.sampler, config.sample.steps),
        "sample_seconds": round(seconds, 1),
        "train_memory": {key: last[key] for key in ("peak_rss_mib", "rss_mib_at_10pct", "rss_mib_at_end")},
        "images": save_npz(images.numpy(), RUNS / "bench-ttq" / f"{name}.npz"),
    }


def run_reference(setting: str, minutes: float, data_dir: str, n: int) -> dict:
    unet, stats = reference.train(setting, minutes, data_dir)
    images, seconds = reference.sample(unet, setting, n, batch=SAMPLING_BATCH)
    save_grid(torch.from_numpy(images[:100]), RESULTS / f"reference_{setting}_grid.png")
    return {
        "name": f"diffusers-{setting}",
        "kimg": round(stats["kimg"], 2),
        "img_per_s": round(stats["img_per_s"], 1),
        "sampler": reference.SETTINGS[setting]["scheduler"].__name__,
        "nfe": reference.SETTINGS[setting]["steps"],
        "sample_seconds": round(seconds, 1),
        "images": save_npz(images, RUNS / "bench-ttq" / f"diffusers-{setting}.npz"),
    }


def bench_time_to_quality(minutes: float, data_dir: str, n: int) -> dict:
    rows = [run_aigc(name, flags, minutes, data_dir, n) for name, flags in AIGC_RUNS.items()]
    aigc("sample", RUNS / AIGC_DEFAULT_RUN, "--n", 100, "--seeds", "0-99", "--out", RESULTS / "mnist_grid.png")
    rows += [run_reference(setting, minutes, data_dir, n) for setting in reference.SETTINGS]
    for row in rows:
        figures, provenance = score(row.pop("images"), data_dir, n)
        row.update(figures, sample_img_per_s=round(n / row["sample_seconds"], 1))
        print(row, flush=True)
    tuned = next(row for row in rows if row["name"] == "diffusers-tuned")
    for row in rows:
        row["fid_ratio_to_tuned_reference"] = round(row["fid"] / tuned["fid"], 4)
        row["sampling_speed_ratio_to_tuned_reference"] = round(row["sample_img_per_s"] / tuned["sample_img_per_s"], 2)
    return {"minutes": minutes, "n": n, **provenance, "rows": rows}
