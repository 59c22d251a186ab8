"""`aigc compress` on the benchmark models: for each option, the checkpoint's size, sampling speed and FID beside
the original's, all in one run. An option may only become a default if its FID is within 5% of the original's."""

from __future__ import annotations

import time
from pathlib import Path

from aigc.core.checkpoint import latest_checkpoint
from aigc.families.registry import generate, load_checkpoint, load_model
from harness import RUNS, SAMPLING_BATCH, aigc, score, train_on_mnist

OPTIONS = {
    "int8": ["--quantize", "int8"],
    "bf16": ["--quantize", "bf16"],
    "prune30": ["--prune", "0.3"],
    "prune30-channels": ["--prune", "0.3", "--prune-structure", "channels"],
}
FINETUNE_KIMG = 20
FID_TOLERANCE = 0.05


def ema_mib(run: Path) -> float:
    """The size of what sampling needs, the EMA weights as stored (a training checkpoint also holds the trained
    model, and a GAN's D, beside them)."""
    tensors = load_checkpoint(latest_checkpoint(run)).modules["ema"].values()
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def images_per_second(run: Path, n: int) -> float:
    """Sampling speed with the run's default settings; the best of two timings."""
    model, config = load_model(run)
    best = 0.0
    for _ in range(2):
        started = time.perf_counter()
        generate(model, range(n), sample=config.sample, batch_size=SAMPLING_BATCH)
        best = max(best, n / (time.perf_counter() - started))
    return best


def bench_model(run: Path, data_dir: str, n: int, speed_n: int, finetune: bool) -> dict:
    variants = {"original": run}
    options = dict(OPTIONS)
    if finetune:
        options[f"prune30-ft{FINETUNE_KIMG}"] = ["--prune", "0.3", "--finetune-kimg", FINETUNE_KIMG]
    for name, flags in options.items():
        out = RUNS / f"bench-opt-{run.name}-{name}"
        aigc("compress", run, *flags, "--out", out, "--overwrite", "--no-progress", "--data-dir", data_dir)
        variants[name] = out
    rows = []
    for name, variant in variants.items():
        figures, provenance = score(variant, data_dir, n)
        speed = images_per_second(variant, speed_n)
        rows.append({"option": name, "mib": round(ema_mib(variant), 3), "img_per_s": round(speed, 1)})
        rows[-1] |= figures
        print(run.name, rows[-1], flush=True)
    base = rows[0]
    for row in rows:
        row["size_ratio"] = round(row["mib"] / base["mib"], 3)
        row["speed_ratio"] = round(row["img_per_s"] / base["img_per_s"], 3)
        row["fid_ratio"] = round(row["fid"] / base["fid"], 3)
        row["fid_within_5pct"] = abs(row["fid_ratio"] - 1) <= FID_TOLERANCE
    return {"model": run.name, **provenance, "rows": rows}


# Each model: its run (named as the benchmark that trains it names it), how `aigc train` makes it, the images
# timed for its sampling speed, and whether pruning is also tried with fine-tuning.
MODELS = [
    ("bench-ttq-aigc", ("diffusion",), 500, True),  # the diffusion default (U-Net): fine-tuning too
    ("bench-gan-seed", ("gan", "--recipe", "seed"), 200_000, False),  # the tutorial's MLP GAN: all Linear layers
    ("bench-gan-conditional", ("gan", "--recipe", "conditional"), 20_000, False),  # the GAN default: convolutional
]


def bench_compression(data_dir: str, n: int, minutes: float) -> dict:
    """Compresses the runs --mnist-minutes and --gan-minutes leave on disk; with `minutes`, trains those missing
    first, as those benchmarks would."""
    for name, method_and_flags, _, _ in MODELS:
        if (RUNS / name).is_dir():
            continue
        if not minutes:
            raise SystemExit(f"error: {RUNS / name} missing; run with --mnist-minutes and --gan-minutes first, "
                             "or give --compress-minutes to train it")  # fmt: skip
        train_on_mnist(RUNS / name, minutes, data_dir, *method_and_flags)
    results = [bench_model(RUNS / name, data_dir, n, speed_n, finetune) for name, _, speed_n, finetune in MODELS]
    return {"n": n, "finetune_kimg": FINETUNE_KIMG, "models": results}
