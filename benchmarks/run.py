"""`make bench`: side-by-side measurements in one process, reported as ratios (the machines are shared and
noisy, so absolute seconds mean little). Results go to benchmarks/results/<name>.json.

  python benchmarks/run.py                    # training throughput of the default recipes, by setting
  python benchmarks/run.py --mnist-minutes 10 # plus the headline: a timed MNIST run, sampled with dpmpp-2m x 10
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


def bench_mnist(minutes: float, data_dir: str) -> dict:
    """The foundation issue's bar: a timed MNIST run with the defaults, sampled with dpmpp-2m at 10 steps."""
    run = Path("runs") / "bench-mnist"
    aigc = [sys.executable, "-m", "aigc"]
    started = time.perf_counter()
    subprocess.run(
        [
            *aigc,
            "train",
            "diffusion",
            "--data",
            "mnist",
            "--data-dir",
            data_dir,
            "--minutes",
            str(minutes),
            "--out",
            str(run),
            "--overwrite",
            "--no-progress",
        ],
        check=True,
    )
    grid = RESULTS / "mnist_grid.png"
    subprocess.run(
        [
            *aigc,
            "sample",
            str(run),
            "--n",
            "100",
            "--seeds",
            "0-99",
            "--sampler",
            "dpmpp-2m",
            "--steps",
            "10",
            "--out",
            str(grid),
        ],
        check=True,
    )
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return {
        "minutes": minutes,
        "kimg": last["kimg"],
        "img_per_s": round(last["img_per_s"], 1),
        "wall_seconds": round(time.perf_counter() - started),
        "grid": grid.name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="timing window per throughput setting")
    parser.add_argument("--mnist-minutes", type=float, default=0, help="also run the timed MNIST benchmark")
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
    print(f"results in {RESULTS}/")


if __name__ == "__main__":
    main()
