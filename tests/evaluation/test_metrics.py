"""Metrics against an independent implementation (torchmetrics) on identical features, and analytic cases."""

import math

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from aigc.evaluation.metrics import (
    class_coverage,
    classifier_score,
    frechet_distance,
    gaussian_stats,
    kernel_inception_distance,
    precision_recall,
)


class Features(torch.nn.Module):
    """Lets torchmetrics take feature vectors as its "images"."""

    def forward(self, x):
        return x.double()


def correlated(n, d, shift, seed):
    """n samples of one fixed correlated Gaussian in d dims (mean `shift`); `seed` picks the samples."""
    mixing = torch.randn(d, d, generator=torch.Generator().manual_seed(1000 + d)) / math.sqrt(d)
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) @ mixing + shift


def test_fid_matches_torchmetrics():
    real, fake = correlated(600, 16, 0.0, 1), correlated(500, 16, 0.4, 2)
    oracle = FrechetInceptionDistance(feature=Features(), input_img_size=(16,), normalize=True)
    oracle.update(real, real=True)
    oracle.update(fake, real=False)
    expected = float(oracle.compute())
    assert frechet_distance(gaussian_stats(real), gaussian_stats(fake)) == pytest.approx(expected, rel=1e-3)


def test_fid_of_two_known_gaussians():
    # N(0, I) vs N(m, 4I) in D dims: |m|^2 + D (1 + 4 - 2 * 2) = |m|^2 + D
    d = 5
    a = gaussian_stats(torch.zeros(2, d))
    a = type(a)(torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64), 1000)
    b = type(a)(torch.full((d,), 2.0, dtype=torch.float64), 4 * torch.eye(d, dtype=torch.float64), 1000)
    assert frechet_distance(a, b) == pytest.approx(4.0 * d + d, rel=1e-9)


def test_fid_of_identical_sets_is_zero():
    x = correlated(300, 8, 1.0, 3)
    assert frechet_distance(gaussian_stats(x), gaussian_stats(x)) == pytest.approx(0.0, abs=1e-8)


def test_kid_matches_torchmetrics_on_whole_sets():
    real, fake = correlated(200, 16, 0.0, 4), correlated(200, 16, 0.3, 5)
    oracle = KernelInceptionDistance(feature=Features(), subsets=1, subset_size=200, normalize=True)
    oracle.update(real, real=True)
    oracle.update(fake, real=False)
    expected, _ = oracle.compute()
    ours, spread = kernel_inception_distance(real, fake, num_subsets=1, subset_size=200)
    assert ours == pytest.approx(float(expected), rel=1e-3) and spread == 0.0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    same_a, same_b = correlated(400, 8, 0.0, 6), correlated(400, 8, 0.0, 9)
    assert abs(kernel_inception_distance(same_a, same_b, 10, 100)[0]) < 0.05
    assert kernel_inception_distance(same_a, correlated(400, 8, 1.0, 7), 10, 100)[0] > 0.1


def test_precision_recall_detect_missing_modes():
    g = torch.Generator().manual_seed(8)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    real = torch.cat([c + torch.randn(300, 2, generator=g) for c in centres])
    collapsed = centres[0] + torch.randn(300, 2, generator=g)  # covers one of two modes
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.9 and 0.3 < recall < 0.7
    far = torch.randn(300, 2, generator=g) + 50
    assert precision_recall(real, far) == (0.0, 0.0)


def test_classifier_score_and_coverage():
    confident_all = torch.eye(10).repeat(10, 1) * 0.99 + 0.001
    assert classifier_score(confident_all) == pytest.approx(10, rel=0.1)
    one_class = torch.zeros(100, 10)
    one_class[:, 3] = 1
    assert classifier_score(one_class) == pytest.approx(1.0, rel=1e-6)
    coverage = class_coverage(one_class)
    assert coverage.classes_present == 1 and coverage.normalized_entropy == 0.0 and coverage.histogram[3] == 100
    full = class_coverage(confident_all)
    assert full.classes_present == 10 and full.normalized_entropy == pytest.approx(1.0)
    assert full.mean_confidence == pytest.approx(0.991)
