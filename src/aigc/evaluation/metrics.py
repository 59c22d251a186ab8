"""Sample-quality metrics as pure functions of feature vectors [N, D] or class probabilities [N, K].

All statistics are computed in float64: FID is a small difference of large numbers, and float32 covariance
products are a common reason why FID numbers do not reproduce between tools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GaussianStats:
    """Mean [D] and covariance [D, D] (float64) of a feature set, with the number of samples behind them."""

    mu: torch.Tensor
    sigma: torch.Tensor
    n: int


def gaussian_stats(features: torch.Tensor) -> GaussianStats:
    """Fit a Gaussian to features [N, D] (N >= 2): the sample mean and the unbiased covariance."""
    x = features.double()
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, D], got {tuple(features.shape)}")
    mu = x.mean(0)
    centred = x - mu
    return GaussianStats(mu, centred.T @ centred / (x.shape[0] - 1), x.shape[0])


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """FID (Heusel et al. 2017): ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    tr((S_a S_b)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric PSD matrix
    S_a^(1/2) S_b S_a^(1/2), which has the same spectrum and avoids a non-symmetric matrix square root.
    """
    root_a = _psd_sqrt(a.sigma)
    cross = torch.linalg.eigvalsh(root_a @ b.sigma @ root_a).clamp(min=0).sqrt().sum()
    value = (a.mu - b.mu).square().sum() + a.sigma.trace() + b.sigma.trace() - 2 * cross
    return float(value.clamp(min=0))


def kernel_inception_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    num_subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): the unbiased MMD^2 with kernel k(x, y) = (x.y / D + 1)^3, as mean and
    standard deviation over random subsets of `subset_size` (capped at the smaller set's size)."""
    real, fake = real.double(), fake.double()
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    generator = generator or torch.Generator().manual_seed(0)
    values = []
    for _ in range(num_subsets):
        x = real[torch.randperm(len(real), generator=generator)[:m]]
        y = fake[torch.randperm(len(fake), generator=generator)[:m]]
        values.append(_mmd2_unbiased(x, y))
    values = torch.tensor(values, dtype=torch.float64)
    return float(values.mean()), float(values.std(unbiased=False)) if len(values) > 1 else 0.0


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    d, m = x.shape[1], x.shape[0]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    off_diagonal = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(off_diagonal - 2 * k_xy.mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): precision is the share of fake samples inside
    the real manifold (the union of balls reaching each real sample's k-th nearest real neighbour); recall
    swaps the roles."""
    real, fake = real.double(), fake.double()
    return _coverage_of(fake, manifold=real, k=k), _coverage_of(real, manifold=fake, k=k)


def _coverage_of(samples: torch.Tensor, manifold: torch.Tensor, k: int, chunk: int = 2048) -> float:
    if len(manifold) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    # k-th nearest neighbour radius of each manifold point, itself excluded (distance 0 is the 1st)
    radii = torch.cat([torch.cdist(part, manifold).kthvalue(k + 1, dim=1).values for part in manifold.split(chunk)])
    inside = [(torch.cdist(part, manifold) <= radii[None]).any(dim=1) for part in samples.split(chunk)]
    return float(torch.cat(inside).double().mean())


def classifier_score(probs: torch.Tensor) -> float:
    """Inception-Score-style exp(E_x KL(p(y|x) || p(y))) of class probabilities [N, K] (Salimans et al. 2016):
    high when each image is confidently one class and all classes appear."""
    p = probs.double().clamp(min=1e-12)
    marginal = p.mean(0, keepdim=True)
    return float(torch.exp((p * (p.log() - marginal.log())).sum(1).mean()))


@dataclass(frozen=True)
class ClassCoverage:
    """How the predicted classes of generated images spread over the K classes: mode collapse shows as few
    classes present and a low normalised entropy."""

    histogram: list[int]
    classes_present: int
    normalized_entropy: float  # entropy of the histogram / log K: 1 = all classes equally often
    mean_confidence: float  # mean top-class probability

    def as_dict(self) -> dict:
        return {
            "histogram": self.histogram,
            "classes_present": self.classes_present,
            "normalized_entropy": self.normalized_entropy,
            "mean_confidence": self.mean_confidence,
        }


def class_coverage(probs: torch.Tensor) -> ClassCoverage:
    """Coverage statistics of class probabilities [N, K]."""
    num_classes = probs.shape[1]
    confidence, predicted = probs.double().max(dim=1)
    histogram = torch.bincount(predicted, minlength=num_classes)
    share = histogram.double() / histogram.sum()
    entropy = -(share[share > 0] * share[share > 0].log()).sum()
    return ClassCoverage(
        histogram=histogram.tolist(),
        classes_present=int((histogram > 0).sum()),
        normalized_entropy=max(0.0, float(entropy / math.log(num_classes))) if num_classes > 1 else 1.0,
        mean_confidence=float(confidence.mean()),
    )
