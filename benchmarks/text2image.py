"""Text to image on this machine: `aigc train text2image` on the MNIST scenes for each wall-clock budget (the
default recipe: 30 kimg of autoencoder, then the denoiser), then `aigc eval` at each guidance scale - prompt
adherence on test captions and on held-out combinations, FID against the real scenes of the same captions -
with training and sampling speed and peak memory, a figure of adherence and FID against guidance, and a grid
of prompts (training-distribution and held-out) with their seeds. At the first budget two baselines train
beside it (`BASELINES`: the pixels instead of latents, a class list instead of sentences), judged at the default
guidance."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness import RESULTS, RUNS, aigc, monitored

GUIDANCE = (1.0, 2.0, 3.0, 5.0, 8.0)
GRID_PROMPTS = (
    "a large 7 in the center",
    "a small 2 at the top left",
    "a large 0 on the left and a large 1 on the right",
    "a small 4 at the bottom and a large 9 at the top",
    "a large 3 at the top left, a small 8 in the center and a large 5 at the bottom right",
    # held-out combinations: no training scene pairs these classes in these places
    "a large 7 on the left and a large 7 on the right",
    "a large 5 at the top and a large 0 at the bottom",
)


# the baselines the default is measured against, each with the same budget (the first one only): the same U-Net on
# the pixels (4x4 patches: the same 12x12 grid as the latents, the same compute), and the scene told as a
# fixed-order class list instead of sentences
BASELINES = {
    "pixels": ("--autoencoder", "none", "--preset", "p48"),
    "class list": ("--captions", "list"),
}


def bench_text2image(budgets: list[float], data_dir: str, n: int) -> dict:
    rows = []
    variants = [(minutes, "latent", ()) for minutes in budgets]
    variants[1:1] = [(budgets[0], name, flags) for name, flags in BASELINES.items()]
    for minutes, variant, flags in variants:
        run = RUNS / f"bench-t2i-{minutes:g}min-{variant.replace(' ', '-')}"
        _, memory = monitored("train", "text2image", "--data", "scenes:mnist", "--data-dir", data_dir, *flags,
                              "--minutes", minutes, "--out", run, "--overwrite", "--no-progress")  # fmt: skip
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        denoiser = [r for r in records if "loss" in r and "autoencoder_loss" not in r]
        autoencoder = [r for r in records if "reconstruction" in r]
        row = {
            "minutes": minutes, "variant": variant, "flags": list(flags), "kimg": records[-1]["kimg"],
            "denoiser_img_per_s": denoiser[-1]["img_per_s"],
            "autoencoder_img_per_s": autoencoder[-1]["img_per_s"] if autoencoder else None,
            "autoencoder_reconstruction_mse": autoencoder[-1]["reconstruction"] if autoencoder else None, **memory,
            "sampling_img_per_s": sampling_speed(run, variant), "by_guidance": {},
        }  # fmt: skip
        for guidance in GUIDANCE if variant == "latent" else (3.0,):
            report = json.loads(aigc("eval", run, "--n", n, "--guidance", guidance, "--json"))
            row["by_guidance"][f"{guidance:g}"] = {
                "adherence_test": report["adherence"]["test"], "adherence_heldout": report["adherence"]["heldout"],
                "fid": report["fid"],
            }  # fmt: skip
            row["adherence_real"] = report["adherence_real"]
            print(f"text2image {minutes:g} min {variant}, guidance {guidance:g}: {row['by_guidance'][f'{guidance:g}']}")
        if variant == "latent":
            prompts = RUNS / "bench-t2i-prompts.txt"
            prompts.write_text("\n".join(GRID_PROMPTS) + "\n")
            grid = RESULTS / f"t2i_{minutes:g}min.png"
            aigc("sample", run, "--prompts-file", prompts, "--seeds", "0-7", "--out", grid)
        rows.append(row)
    plot_guidance([row for row in rows if row["variant"] == "latent"], RESULTS / "t2i_guidance.png")
    return {"n": n, "grid_prompts": GRID_PROMPTS, "rows": rows}


def sampling_speed(run: Path, variant: str, n: int = 256) -> float:
    """Images per second of `aigc sample` (10 steps of dpmpp-2m, guidance 3: 20 network evaluations each)."""
    prompt = "- - - - 7/l - - - -" if variant == "class list" else GRID_PROMPTS[0]
    started = time.perf_counter()
    aigc("sample", run, "--prompt", prompt, "--n", n, "--out", RUNS / "bench-t2i-speed.png")
    return n / (time.perf_counter() - started)


def plot_guidance(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=100)
    for row in rows:
        scales = [float(g) for g in row["by_guidance"]]
        values = list(row["by_guidance"].values())
        left.plot(
            scales, [v["adherence_test"]["all"] for v in values], marker="o", label=f"{row['minutes']:g} min, test"
        )
        left.plot(scales, [v["adherence_heldout"]["all"] for v in values], marker="s", linestyle="--",
                  label=f"{row['minutes']:g} min, held-out")  # fmt: skip
        right.plot(scales, [v["fid"] for v in values], marker="o", label=f"{row['minutes']:g} min")
    left.set_xlabel("guidance scale")
    left.set_ylabel("images with every object right")
    right.set_xlabel("guidance scale")
    right.set_ylabel("FID vs real scenes (aigc-mnist-cnn-v1)")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
