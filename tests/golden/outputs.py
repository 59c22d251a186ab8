"""Golden outputs: a tiny diffusion run and a tiny GAN run on `digits` with fixed seeds and kimg budgets, reduced
to a summary of every tensor of the final checkpoint, the sha256 of `aigc sample`'s PNG bytes for seeds 0-15
and the numbers of `aigc eval --json`. Refactors must leave them unchanged (tests/test_golden.py compares).

Record anew only when behaviour is meant to change: `python tests/golden/outputs.py --record`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open

RECORDED = Path(__file__).with_name("outputs.json")
COMMON = [
    "--data",
    "digits",
    "--image-size",
    "8",
    "--batch",
    "16",
    "--kimg",
    "0.064",
    "--no-progress",
    "--threads",
    "1",
]
RUNS = {
    # the sampler and the GAN recipe release 0.1.0's checkpoints use (the defaults then), so the two stay comparable
    "diffusion": [
        "train",
        "diffusion",
        *COMMON,
        "--preset",
        "tiny",
        "--snapshot-kimg",
        "0.032",
        "--precision",
        "fp32",
        "--sampler",
        "dpmpp-2m",
    ],
    "gan": [
        "train",
        "gan",
        "--recipe",
        "stable",
        *COMMON,
        "--width",
        "8",
        "--z-dim",
        "8",
        "--conditional",
        "--precision",
        "fp32",
    ],
}
EVAL = ["--data", "digits", "--n", "64", "--json"]


def aigc(*args) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "aigc", *map(str, args)], capture_output=True, text=True, env=env)
    if result.returncode:
        raise RuntimeError(f"aigc {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


def tensor_summaries(path: Path) -> dict[str, list[float]]:
    """Each tensor as [its norm, its projections on two fixed random directions]: equal up to float rounding on any
    CPU (a digest of the bytes is not: CPUs with other vector units round the same training differently), while
    a change to any value moves a projection by about the change's norm."""
    summaries = {}
    with safe_open(str(path), framework="pt") as f:
        for key in sorted(f.keys()):
            values = f.get_tensor(key).double().flatten()
            directions = torch.randn(2, len(values), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
            summaries[key] = [values.norm().item(), *(directions @ values).tolist()]
    return summaries


def outputs(work: Path) -> dict:
    """Train each run into `work`, sample and evaluate it; the digests and numbers."""
    result = {}
    for name, args in RUNS.items():
        run_dir = work / name
        aigc(*args, "--out", run_dir)
        newest = max((run_dir / "checkpoints").glob("[0-9]*[0-9].safetensors"))
        aigc("sample", run_dir, "--seeds", "0-15", "--out", f"{work}/{name}-samples/", "--device", "cpu")
        pngs = sorted((work / f"{name}-samples").glob("*.png"))
        report = json.loads(aigc("eval", run_dir, *EVAL))
        result[name] = {
            "checkpoint": newest.name,
            "tensors": tensor_summaries(newest),
            "samples": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in pngs},
            "eval": {k: report[k] for k in ("fid", "kid", "kid_std", "precision", "recall", "coverage", "n")},
        }
    return result


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/golden/outputs.py --record  (overwrites tests/golden/outputs.json)")
    with tempfile.TemporaryDirectory() as work:
        RECORDED.write_text(json.dumps(outputs(Path(work)), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORDED}")
