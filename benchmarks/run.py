"""`make bench`: side-by-side measurements in one process, reported as ratios (the machines are shared and
noisy, so absolute seconds mean little). Results go to benchmarks/results/<name>.json.

  python benchmarks/run.py                    # training throughput of the default recipes, by setting
  python benchmarks/run.py --mnist-minutes 10 # plus the headline: a timed MNIST run, sampled with dpmpp-2m x 10
  python benchmarks/run.py --gan-minutes 5    # plus the GAN recipes (seed, dcgan, stable), same budget each
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from aigc.models.diffusion import ModelConfig, build_denoiser
from aigc.training.losses import LossConfig, make_loss

RESULTS = Path(__file__).parent / "results"


def throughput(preset: str, size: int, precision: str, memory_format: str, batch: int, seconds: float) -> float:
    """Training images per second of one configuration: forward, backward and an optimiser step."""
    torch.manual_seed(0)
    denoiser = build_denoiser(ModelConfig(preset=preset, image_size=size, channels=1, num_classes=10))
    if memory_format == "channels_last":
        denoiser = denoiser.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(denoiser.parameters(), 1e-3)
    loss_fn = make_loss(LossConfig(), denoiser)
    generator = torch.Generator().manual_seed(0)
    y = torch.rand(batch, 1, size, size) * 2 - 1
    if memory_format == "channels_last":
        y = y.contiguous(memory_format=torch.channels_last)
    labels = torch.arange(batch) % 10
    autocast = torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16")

    def step():
        with autocast:
            loss = loss_fn(denoiser, y, labels, generator).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        images += batch
    return images / (time.perf_counter() - started)


def bench_throughput(seconds: float) -> dict:
    rows = []
    for preset, size in (("s16", 16), ("s28", 28)):
        for precision in ("fp32", "bf16"):
            for memory_format in ("contiguous", "channels_last"):
                ips = throughput(preset, size, precision, memory_format, batch=64, seconds=seconds)
                rows.append(
                    {
                        "preset": preset,
                        "size": size,
                        "precision": precision,
                        "memory_format": memory_format,
                        "img_per_s": round(ips, 1),
                    }
                )
                print(rows[-1], flush=True)
    for preset in ("s16", "s28"):
        base = next(
            r for r in rows if r["preset"] == preset and r["precision"] == "fp32" and r["memory_format"] == "contiguous"
        )
        for r in rows:
            if r["preset"] == preset:
                r["ratio_to_fp32_contiguous"] = round(r["img_per_s"] / base["img_per_s"], 2)
    return {"rows": rows}


def aigc(*args) -> str:
    """Run an aigc command as a user would; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "aigc", *map(str, args)], check=True, stdout=subprocess.PIPE, text=True
    )
    return result.stdout


def train_on_mnist(run: Path, minutes: float, data_dir: str, *method_and_flags) -> None:
    aigc(
        "train",
        *method_and_flags,
        "--data",
        "mnist",
        "--data-dir",
        data_dir,
        "--minutes",
        minutes,
        "--out",
        run,
        "--overwrite",
        "--no-progress",
    )


def bench_mnist(minutes: float, data_dir: str) -> dict:
    """The foundation issue's bar: a timed MNIST run with the defaults, sampled with dpmpp-2m at 10 steps."""
    run = Path("runs") / "bench-mnist"
    started = time.perf_counter()
    train_on_mnist(run, minutes, data_dir, "diffusion")
    grid = RESULTS / "mnist_grid.png"
    aigc("sample", run, "--n", 100, "--seeds", "0-99", "--sampler", "dpmpp-2m", "--steps", 10, "--out", grid)
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return {
        "minutes": minutes,
        "kimg": last["kimg"],
        "img_per_s": round(last["img_per_s"], 1),
        "wall_seconds": round(time.perf_counter() - started),
        "grid": grid.name,
    }


def bench_gan(minutes: float, data_dir: str, n: int) -> dict:
    """The GAN issue's bar: each recipe trains on MNIST for the same wall-clock budget, then `aigc eval` scores n
    images of its EMA generator against the MNIST test split with the shipped extractor."""
    rows = []
    for recipe in ("seed", "dcgan", "stable"):
        run = Path("runs") / f"bench-gan-{recipe}"
        train_on_mnist(run, minutes, data_dir, "gan", "--recipe", recipe)
        grid = RESULTS / f"gan_{recipe}_grid.png"
        aigc("sample", run, "--n", 100, "--seeds", "0-99", "--out", grid)
        report = json.loads(aigc("eval", run, "--data-dir", data_dir, "--n", n, "--json"))
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        rows.append(
            {
                "recipe": recipe,
                "kimg": last["kimg"],
                "img_per_s": round(last["img_per_s"], 1),
                "fid": round(report["fid"], 2),
                "kid": round(report["kid"], 3),
                "precision": report["precision"],
                "recall": report["recall"],
                "classes_present": report["coverage"]["classes_present"],
                "class_entropy": round(report["coverage"]["normalized_entropy"], 3),
                "grid": grid.name,
            }
        )
        print(rows[-1], flush=True)
    seed = rows[0]
    for row in rows:
        row["fid_ratio_to_seed"] = round(row["fid"] / seed["fid"], 3)
    return {
        "minutes": minutes,
        "n": n,
        "reference": report["reference"],
        "extractor": report["extractor"],
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="timing window per throughput setting")
    parser.add_argument("--mnist-minutes", type=float, default=0, help="also run the timed MNIST benchmark")
    parser.add_argument("--gan-minutes", type=float, default=0, help="also compare the GAN recipes on MNIST")
    parser.add_argument("--gan-n", type=int, default=10_000, help="images scored per GAN recipe")
    parser.add_argument("--data-dir", default=os.environ.get("AIGC_DATA_DIR", "../shared/data"))
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    results = {"machine": machine, "throughput": bench_throughput(args.seconds)}
    (RESULTS / "throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.mnist_minutes:
        mnist = {"machine": machine, **bench_mnist(args.mnist_minutes, args.data_dir)}
        (RESULTS / "mnist.json").write_text(json.dumps(mnist, indent=2) + "\n")
    if args.gan_minutes:
        gan = {"machine": machine, **bench_gan(args.gan_minutes, args.data_dir, args.gan_n)}
        (RESULTS / "gan.json").write_text(json.dumps(gan, indent=2) + "\n")
    print(f"results in {RESULTS}/")


if __name__ == "__main__":
    main()
