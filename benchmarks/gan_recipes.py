"""The GAN issue's bar: each recipe trains on MNIST for the same wall-clock budget, then `aigc eval` scores n images
of its EMA generator against the MNIST test split with the shipped extractor."""

from __future__ import annotations

from harness import RESULTS, RUNS, aigc, score, train_on_mnist

RECIPES = ("seed", "dcgan", "stable", "conditional")


def bench_gan(minutes: float, data_dir: str, n: int) -> dict:
    rows = []
    for recipe in RECIPES:
        run = RUNS / f"bench-gan-{recipe}"
        last = train_on_mnist(run, minutes, data_dir, "gan", "--recipe", recipe)
        grid = RESULTS / f"gan_{recipe}_grid.png"
        aigc("sample", run, "--n", 100, "--seeds", "0-99", "--out", grid)
        figures, provenance = score(run, data_dir, n)
        rows.append(
            {
                "recipe": recipe,
                "kimg": last["kimg"],
                "img_per_s": round(last["img_per_s"], 1),
                **figures,
                "grid": grid.name,
            }
        )
        print(rows[-1], flush=True)
    for row in rows:
        row["fid_ratio_to_seed"] = round(row["fid"] / rows[0]["fid"], 3)
    return {"minutes": minutes, "n": n, **provenance, "rows": rows}
