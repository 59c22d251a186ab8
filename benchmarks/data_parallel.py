"""Data parallelism on this machine: aigc's default MNIST diffusion recipe trained by one process and by two
(torchrun, gloo), one thread each, same global batch and budget. The ratio of their training images/s is the
speed-up, and half of it the scaling efficiency; what is lost goes to the gradient all_reduce and the ranks
waiting for each other."""

from __future__ import annotations

from harness import RUNS, train_on_mnist

PROCESSES = (1, 2)


def bench_data_parallel(minutes: float, data_dir: str) -> dict:
    rows = []
    for processes in PROCESSES:
        run = RUNS / f"bench-ddp-{processes}"
        last = train_on_mnist(run, minutes, data_dir, "diffusion", "--threads", 1, processes=processes)
        img_per_s = round(last["kimg"] * 1000 / last["train_seconds"], 1)  # over the whole run, not the last window
        rows.append({"processes": processes, "threads_each": 1, "kimg": last["kimg"], "img_per_s": img_per_s})
        print(rows[-1], flush=True)
    for row in rows:
        row["speedup"] = round(row["img_per_s"] / rows[0]["img_per_s"], 2)
        row["efficiency"] = round(row["speedup"] / row["processes"], 2)
    return {"minutes": minutes, "rows": rows}
