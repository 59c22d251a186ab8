"""The tutorial's figures, drawn from the committed benchmark results (never by hand):
`python benchmarks/figures.py` writes docs/img/*.png. Rerun it after `make bench`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
FIGURES = Path(__file__).parents[1] / "docs" / "img"


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def save(figure, name: str) -> None:
    figure.tight_layout()
    figure.savefig(FIGURES / name, dpi=90)
    plt.close(figure)


def fid_vs_nfe() -> None:
    results = load("sampling")
    figure, axes = plt.subplots(figsize=(6, 3.6))
    for sampler in dict.fromkeys(row["sampler"] for row in results["rows"]):
        rows = [row for row in results["rows"] if row["sampler"] == sampler]
        axes.plot([r["nfe"] for r in rows], [r["fid"] for r in rows], marker="o", label=sampler)
    axes.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)", ylabel=f"FID (n = {results['n']})")
    axes.set_title("MNIST diffusion model: FID against sampling cost")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    save(figure, "fid_vs_nfe.png")


def gan_recipes() -> None:
    results = load("gan")
    rows = results["rows"]
    figure, axes = plt.subplots(figsize=(6, 3))
    axes.bar(
        [r["recipe"] for r in rows],
        [r["fid"] for r in rows],
        color=["tab:gray", "tab:blue", "tab:green", "tab:red"][: len(rows)],
    )
    for k, r in enumerate(rows):
        axes.text(k, r["fid"], f"FID {r['fid']}\nentropy {r['class_entropy']}", ha="center", va="bottom", fontsize=8)
    axes.set(ylabel=f"FID (n = {results['n']})", ylim=(0, 1.35 * max(r["fid"] for r in rows)))
    axes.set_title(f"GAN recipes, {results['minutes']:g} minutes each on MNIST")
    save(figure, "gan_recipes.png")
    for r in rows:
        shutil.copyfile(RESULTS / r["grid"], FIGURES / r["grid"])


def compression_tradeoffs() -> None:
    results = load("compression")
    figure, axes = plt.subplots(figsize=(7, 3.4))
    options = [row["option"] for row in results["models"][0]["rows"] if row["option"] != "original"]
    width = 0.8 / len(results["models"])
    for m, model in enumerate(results["models"]):
        by_option = {row["option"]: row for row in model["rows"]}
        changes = [100 * (by_option[o]["fid_ratio"] - 1) if o in by_option else 0 for o in options]
        axes.bar([k + m * width for k in range(len(options))], changes, width, label=model["model"])
    axes.axhline(5, color="tab:red", linestyle="--", linewidth=1, label="5% bar")
    axes.set_xticks([k + width for k in range(len(options))], options, fontsize=8)
    axes.set(ylabel="FID change (%)", yscale="symlog")
    axes.set_title("aigc compress: FID change of each option")
    axes.legend(fontsize=7)
    save(figure, "compression_fid.png")


def loss_curves() -> None:
    """Training losses of the benchmark runs (results/curves/, saved by harness.train_on_mnist)."""
    gans = [load(f"curves/bench-gan-{row['recipe']}") for row in load("gan")["rows"]]
    figure, panels = plt.subplots(1, len(gans), figsize=(3.4 * len(gans), 3), sharey=True)
    for axes, curve in zip(panels, gans, strict=True):
        for key in ("loss_d", "loss_g"):
            axes.plot([r["kimg"] for r in curve["rows"]], [r[key] for r in curve["rows"]], label=key, linewidth=1)
        axes.set(title=f"{curve['config']['recipe']} recipe", xlabel="kimg", xscale="log")
        axes.grid(alpha=0.3)
    panels[0].legend()
    save(figure, "gan_losses.png")
    diffusion = load("curves/bench-ttq-aigc")
    figure, axes = plt.subplots(figsize=(6, 3))
    axes.plot([r["kimg"] for r in diffusion["rows"]], [r["loss"] for r in diffusion["rows"]], linewidth=1)
    axes.set(xlabel="kimg", ylabel="EDM loss", title="diffusion, default recipe, 10 minutes on MNIST")
    axes.grid(alpha=0.3)
    save(figure, "diffusion_loss.png")


# the benchmarks' own images that docs/benchmarks.md shows (the GAN grids are copied by gan_recipes)
RESULT_IMAGES = (
    "mnist_grid.png",
    "reference_tuned_grid.png",
    "reference_default_grid.png",
    "quality_diffusion_grid.png",
    "quality_gan_grid.png",
    "quality_gan-half_grid.png",
    "t2i_30min.png",
    "t2i_guidance.png",
)


def result_images() -> None:
    for name in RESULT_IMAGES:
        shutil.copyfile(RESULTS / name, FIGURES / name)


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    fid_vs_nfe()
    gan_recipes()
    compression_tradeoffs()
    loss_curves()
    result_images()
    print(f"figures in {FIGURES}/")


if __name__ == "__main__":
    main()
