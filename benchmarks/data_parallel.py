"""Data parallelism: aigc's default MNIST diffusion recipe trained by 1, 2, ... processes under torchrun, same
global batch and budget. The ratio of their training images/s is the speed-up, divided by the process count the
scaling efficiency; what is lost goes to the gradient all_reduce and to ranks waiting for each other.

`make bench` compares 1 and 2 CPU processes of one thread each (gloo). On a GPU machine, run this file (or
benchmarks/gpu_scaling.sh): 1, 2, 4 ... up to every visible GPU (NCCL), written to results/gpu_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from harness import RESULTS, RUNS, machine, train_on_mnist


def bench_data_parallel(minutes: float, data_dir: str, counts=(1, 2), flags=("--threads", 1)) -> dict:
    rows = []
    for processes in counts:
        run = RUNS / f"bench-ddp-{processes}"
        last = train_on_mnist(run, minutes, data_dir, "diffusion", *flags, processes=processes)
        img_per_s = round(last["kimg"] * 1000 / last["train_seconds"], 1)  # over the whole run, not the last window
        rows.append({"processes": processes, "kimg": last["kimg"], "img_per_s": img_per_s})
        print(rows[-1], flush=True)
    for row in rows:
        row["speedup"] = round(row["img_per_s"] / rows[0]["img_per_s"], 2)
        row["efficiency"] = round(row["speedup"] / row["processes"], 2)
    return {"minutes": minutes, "flags": [str(flag) for flag in flags], "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description="data-parallel scaling over this machine's GPUs")
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per GPU count")
    parser.add_argument("--batch", type=int, default=512, help="global batch, split over the GPUs")
    parser.add_argument("--data-dir", default=os.environ.get("AIGC_DATA_DIR", "../shared/data"))
    args = parser.parse_args()
    gpus = torch.cuda.device_count()
    if gpus < 1:
        print("error: no CUDA GPU visible to torch; run this on a GPU machine", file=sys.stderr)
        return 2
    counts = [n for n in (1, 2, 4, 8, 16) if n <= gpus]
    result = bench_data_parallel(args.minutes, args.data_dir, counts, ("--batch", args.batch))
    result = {"machine": machine(), "gpu": torch.cuda.get_device_name(0), **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gpu_scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
