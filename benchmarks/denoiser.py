"""Where a diffusion model's error lives, noise level by noise level: the EDM-weighted loss of its EMA denoiser
on MNIST test images at each sigma (against the identity D(x) = x, whose weighted loss tends to 1 as sigma -> 0)
and the FID of its one-step prediction D(y + sigma n, sigma) (against the FID of the noisy input itself). A
denoiser worse than the identity at low noise would damage every sample a little more with each step an ODE
sampler spends there; one whose one-step FID is already at the floor at low noise makes its mistakes higher up.

    python benchmarks/denoiser.py RUN --data-dir ../shared/data"""

from __future__ import annotations

import torch

from aigc.core.images import to_model_space, to_uint8
from aigc.data.datasets import DataConfig, load_dataset
from aigc.evaluation import metrics
from aigc.evaluation.evaluate import EvalConfig, reference
from aigc.evaluation.features import load_extractor
from aigc.families.registry import load_model

SIGMAS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0, 80.0)


@torch.no_grad()
def per_sigma(model, images: torch.Tensor, labels: torch.Tensor, extractor, stats, sigma_data: float) -> list[dict]:
    """Weighted loss of D and of the identity, and FID of D's prediction and of the noisy input, per sigma (the
    same noise at every sigma, seed 0)."""
    y = to_model_space(images)
    noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    rows = []
    for sigma in SIGMAS:
        weight = (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2
        x = y + sigma * noise
        parts = [
            model(x[k : k + 250], sigma, None if labels is None else labels[k : k + 250]) for k in range(0, len(x), 250)
        ]
        denoised = torch.cat(parts)
        row = {"sigma": sigma}
        for name, estimate in (("denoiser", denoised), ("identity", x)):
            row[f"loss_{name}"] = round(weight * float(((estimate - y) ** 2).mean()), 4)
            features, _ = extractor(to_uint8(estimate))
            row[f"fid_{name}"] = round(metrics.frechet_distance(stats, metrics.gaussian_stats(features)), 3)
        rows.append(row)
        print(row, flush=True)
    return rows


def bench_denoiser(run, data_dir: str, n: int = 2000) -> list[dict]:
    model, _ = load_model(run)
    extractor = load_extractor("mnist")
    _, stats = reference(extractor, EvalConfig(data="mnist", data_dir=data_dir), False)
    test = load_dataset(DataConfig(name="mnist", data_dir=data_dir), "test")
    pick = torch.randperm(len(test.images), generator=torch.Generator().manual_seed(0))[:n]
    labels = test.labels[pick] if model.net.num_classes else None
    return per_sigma(model, test.images[pick], labels, extractor, stats, model.config.sigma_data)


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(bench_denoiser(args.run, args.data_dir, args.n)))
