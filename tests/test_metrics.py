"""course_utils.metrics: the Fréchet distance, FID-FMNIST helpers and the toy mode counts."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import metrics
from course_utils.models import FashionClassifier
from course_utils.toy import ring_centres, ring_of_gaussians


def _random_cov(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_of_identical_gaussians_is_zero():
    mu, sigma = torch.randn(16, dtype=torch.float64), _random_cov(16, 0)
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-8)


def test_frechet_of_shifted_gaussians_is_squared_shift():
    sigma = _random_cov(8, 1)
    mu = torch.zeros(8, dtype=torch.float64)
    shift = torch.arange(8, dtype=torch.float64) / 4
    expected = shift.square().sum().item()
    assert metrics.frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(expected, rel=1e-8)


def test_frechet_is_symmetric():
    a, b = _random_cov(12, 2), _random_cov(12, 3)
    mu1, mu2 = torch.zeros(12), torch.ones(12)
    assert metrics.frechet_distance(mu1, a, mu2, b) == pytest.approx(metrics.frechet_distance(mu2, b, mu1, a), rel=1e-9)


def test_frechet_matches_closed_form_for_diagonal_covariances():
    v1, v2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((v1.sqrt() - v2.sqrt()) ** 2).sum()
    got = metrics.frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2))
    assert got == pytest.approx(expected.item(), rel=1e-9)


def test_frechet_handles_singular_covariances():
    x = torch.randn(5, 20, dtype=torch.float64)  # rank 4 covariance in 20-d
    mu, sigma = metrics.feature_stats(x)
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-6)


def test_frechet_bad_shapes_raise_clear_errors():
    mu, sigma = torch.zeros(4), torch.eye(4)
    with pytest.raises(ValueError, match="sigma1 must be"):
        metrics.frechet_distance(mu, torch.eye(3), mu, sigma)
    with pytest.raises(ValueError, match="mu2 must be a vector"):
        metrics.frechet_distance(mu, sigma, torch.zeros(2, 2), sigma)
    with pytest.raises(ValueError, match="different dimensions"):
        metrics.frechet_distance(mu, sigma, torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.feature_stats(torch.zeros(1, 4))


def test_feature_stats_match_numpy_cov():
    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    mu, sigma = metrics.feature_stats(x)
    assert torch.allclose(mu, x.double().mean(0)) and torch.allclose(sigma, torch.cov(x.double().T))


@pytest.fixture(scope="module")
def tiny_classifier():
    torch.manual_seed(0)
    return FashionClassifier(channels=(4, 8, 8), hidden=16).eval()


def test_fid_fmnist_is_zero_against_own_stats_and_grows_with_noise(tiny_classifier):
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(300, 1, 28, 28, generator=gen) * 0.5
    feats, probs = metrics.classifier_outputs(tiny_classifier, images)
    assert feats.shape == (300, 16) and torch.allclose(probs.sum(1), torch.ones(300), atol=1e-5)
    ref = metrics.feature_stats(feats)
    assert metrics.fid_fmnist(images, tiny_classifier, ref) == pytest.approx(0, abs=1e-6)
    assert metrics.fid_fmnist(torch.rand(300, 1, 28, 28, generator=gen), tiny_classifier, ref) > 0


def test_fid_fmnist_rejects_tanh_images_without_value_range(tiny_classifier):
    images = torch.rand(10, 1, 28, 28) * 2 - 1
    ref = (torch.zeros(16), torch.eye(16))
    with pytest.raises(ValueError, match="value_range"):
        metrics.fid_fmnist(images, tiny_classifier, ref)
    assert metrics.fid_fmnist(images, tiny_classifier, ref, value_range=(-1, 1)) >= 0
    with pytest.raises(ValueError, match=r"\[N, 1, 28, 28\]"):
        metrics.fid_fmnist(torch.zeros(10, 28, 28), tiny_classifier, ref)


def test_reference_stats_are_cached_by_fingerprint(tiny_classifier, tmp_path):
    images = torch.rand(50, 1, 28, 28)
    mu, sigma = metrics.reference_stats(tiny_classifier, images, cache_dir=tmp_path)
    again = metrics.reference_stats(tiny_classifier, cache_dir=tmp_path)  # from the cache: no images needed
    assert torch.equal(mu, again[0]) and torch.equal(sigma, again[1])
    other = FashionClassifier(channels=(4, 8, 8), hidden=16)
    assert metrics.model_fingerprint(other) != metrics.model_fingerprint(tiny_classifier)


def test_class_confidence_diversity_bounds(tiny_classifier):
    out = metrics.class_confidence_diversity(torch.rand(200, 1, 28, 28), tiny_classifier)
    assert 0.1 <= out["confidence"] <= 1 and 0 <= out["diversity"] <= 1
    assert 1 - 1e-9 <= out["score"] <= 10 and 0 <= out["classes_covered"] <= 10


def test_nearest_neighbours_finds_exact_copies():
    refs = torch.rand(5000, 1, 28, 28)
    d, i = metrics.nearest_neighbours(refs[[3, 4321]], refs, k=2, batch_size=1000)
    assert i[:, 0].tolist() == [3, 4321] and torch.allclose(d[:, 0], torch.zeros(2), atol=1e-3)
    assert (d[:, 1] > 1).all()
    with pytest.raises(ValueError, match="same item shape"):
        metrics.nearest_neighbours(torch.zeros(2, 4), refs)


def test_mode_report_on_real_and_collapsed_samples():
    centres = ring_centres(8, 2.0)
    real = ring_of_gaussians(4000, std=0.05, generator=torch.Generator().manual_seed(0))
    report = metrics.mode_report(real, centres, std=0.05)
    assert report["modes_covered"] == 8 and report["modes_nearest"] == 8
    assert report["high_quality_share"] > 0.98
    collapsed = centres[2] + 0.05 * torch.randn(1000, 2)
    assert metrics.modes_covered(collapsed, centres, 0.05) == 1
    assert metrics.mode_report(collapsed, centres, 0.05)["modes_nearest"] == 1
    far = torch.zeros(100, 2)  # all at the centre of the ring: nowhere near a mode
    assert metrics.high_quality_share(far, centres, 0.05) == 0


def test_summarise_mean_and_std():
    mean, std = metrics.summarise([0.8, 0.9, 1.0])
    assert mean == pytest.approx(0.9) and std == pytest.approx(0.1)
    assert metrics.summarise([0.5]) == (0.5, 0.0)
    assert not math.isnan(metrics.summarise([1.0, 1.0])[1])


def test_image_report_matches_the_separate_metrics(tiny_classifier):
    images = torch.rand(120, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ref = metrics.feature_stats(metrics.classifier_outputs(tiny_classifier, torch.rand(200, 1, 28, 28))[0])
    report = metrics.image_report(images, tiny_classifier, ref, value_range=(-1, 1), labels=torch.zeros(120).long())
    assert report["n"] == 120
    assert report["fid"] == pytest.approx(metrics.fid_fmnist(images, tiny_classifier, ref, value_range=(-1, 1)))
    pair = metrics.class_confidence_diversity(images, tiny_classifier, value_range=(-1, 1))
    assert all(report[k] == pytest.approx(v) for k, v in pair.items())
    assert 0 <= report["on_label"] <= 1
