"""course_utils.evaluation: the Fréchet distance, FID-FMNIST, KID, precision/recall, intervals, nearest neighbours.

The cache of FID's reference statistics is tested in ``test_reference_stats.py``, the text metrics in ``test_text.py``.
"""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import evaluation
from course_utils.classifier import FashionClassifier
from tests import image_support

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


def _random_cov(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- the Fréchet distance (float64 throughout: tolerances are float64 rounding) ---------------------


def test_frechet_of_identical_gaussians_is_zero():
    mu, sigma = _randn(16, seed=0, dtype=torch.float64), _random_cov(16, 0)
    assert evaluation.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-8)


def test_frechet_of_shifted_gaussians_is_squared_shift():
    sigma = _random_cov(8, 1)
    mu = torch.zeros(8, dtype=torch.float64)
    shift = torch.arange(8, dtype=torch.float64) / 4
    assert evaluation.frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(shift.square().sum().item(),
                                                                                       rel=1e-8)


def test_frechet_is_symmetric():
    a, b = _random_cov(12, 2), _random_cov(12, 3)
    mu1, mu2 = torch.zeros(12), torch.ones(12)
    assert evaluation.frechet_distance(mu1, a, mu2, b) == pytest.approx(evaluation.frechet_distance(mu2, b, mu1, a),
                                                                        rel=1e-9)


def test_frechet_matches_closed_form_for_diagonal_covariances():
    v1, v2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((v1.sqrt() - v2.sqrt()) ** 2).sum()  # 5 + 4 + 1 = 10
    got = evaluation.frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2))
    assert expected.item() == 10 and got == pytest.approx(10.0, rel=1e-9)


def test_frechet_matches_scipy_sqrtm_on_random_statistics():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    for seed in range(3):
        s1, s2 = _random_cov(10, 10 + seed), _random_cov(10, 20 + seed)
        mu1, mu2 = _randn(10, seed=seed, dtype=torch.float64), _randn(10, seed=seed + 5, dtype=torch.float64)
        covmean = scipy_linalg.sqrtm(s1.numpy() @ s2.numpy()).real
        expected = float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2 * covmean.trace())
        assert evaluation.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)


def test_frechet_handles_singular_covariances():
    x = _randn(5, 20, seed=4, dtype=torch.float64)  # rank 4 covariance in 20-d
    mu, sigma = evaluation.feature_stats(x)
    assert evaluation.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-6)


def test_frechet_bad_shapes_raise_clear_errors():
    mu, sigma = torch.zeros(4), torch.eye(4)
    with pytest.raises(ValueError, match="sigma1 must be"):
        evaluation.frechet_distance(mu, torch.eye(3), mu, sigma)
    with pytest.raises(ValueError, match="mu2 must be a vector"):
        evaluation.frechet_distance(mu, sigma, torch.zeros(2, 2), sigma)
    with pytest.raises(ValueError, match="different dimensions"):
        evaluation.frechet_distance(mu, sigma, torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="finite"):
        evaluation.frechet_distance(mu, sigma * math.nan, mu, sigma)
    with pytest.raises(ValueError, match="N >= 2"):
        evaluation.feature_stats(torch.zeros(1, 4))


def test_feature_stats_match_torch_cov():
    x = _randn(500, 6, seed=0)
    mu, sigma = evaluation.feature_stats(x)
    assert torch.allclose(mu, x.double().mean(0)) and torch.allclose(sigma, torch.cov(x.double().T))


# --- FID-FMNIST with a tiny classifier --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_classifier():
    return image_support.tiny_classifier()


_images = image_support.random_images


def test_classifier_outputs_do_not_depend_on_the_batch(tiny_classifier):
    images = _images(300, 1)
    small = evaluation.classifier_outputs(tiny_classifier, images, batch_size=7)  # 42 full batches and one of 6
    whole = evaluation.classifier_outputs(tiny_classifier, images, batch_size=300)
    for a, b in zip(small, whole, strict=True):
        assert a.shape == b.shape
        # the same per-image arithmetic; a convolution library may pick another float32 algorithm per batch size,
        # which moves values of order 1 by a few units of the last place (float32: 1.2e-7 each)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_classifier_outputs_run_in_eval_mode_and_restore_the_mode(tiny_classifier):
    model = FashionClassifier(channels=(4, 8, 8), hidden=16)
    model.load_state_dict(tiny_classifier.state_dict())
    model.train()  # batch norm on batch statistics, which training-mode outputs would use and update
    feats, probs = evaluation.classifier_outputs(model, _images(20, 3))
    assert model.training and not feats.requires_grad and not probs.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), tiny_classifier.state_dict().values(),
                                                 strict=True))  # the running statistics untouched
    assert torch.equal(feats, evaluation.classifier_outputs(tiny_classifier, _images(20, 3))[0])


def test_fid_fmnist_is_the_frechet_distance_of_the_features(tiny_classifier):
    images = _images(300, 0) * 0.5
    other = 1 - images  # white garments on black become black on white
    feats, probs = evaluation.classifier_outputs(tiny_classifier, images)
    assert feats.shape == (300, 16) and probs.shape == (300, 10)
    ref = evaluation.feature_stats(feats)
    assert evaluation.fid_fmnist(images, tiny_classifier, ref) == pytest.approx(0, abs=1e-6)
    expected = evaluation.frechet_distance(*evaluation.feature_stats(tiny_classifier.features(other).detach()), *ref)
    assert evaluation.fid_fmnist(other, tiny_classifier, ref) == pytest.approx(expected, rel=1e-4)
    assert expected > 1e-3  # a thousand times the tolerance of the zero above: the sets differ


def test_fid_fmnist_rejects_tanh_images_without_value_range(tiny_classifier):
    images = _images(10, 2) * 2 - 1
    ref = (torch.zeros(16), torch.eye(16))
    with pytest.raises(ValueError, match="value_range"):
        evaluation.fid_fmnist(images, tiny_classifier, ref)
    mapped = evaluation.fid_fmnist((images + 1) / 2, tiny_classifier, ref)
    assert evaluation.fid_fmnist(images, tiny_classifier, ref, value_range=(-1, 1)) == pytest.approx(mapped)
    with pytest.raises(ValueError, match=r"\[N, 1, 28, 28\]"):
        evaluation.fid_fmnist(torch.zeros(10, 28, 28), tiny_classifier, ref)


# --- the classifier's predictions -------------------------------------------------------------------


def test_prediction_stats_known_answers():
    balanced = torch.eye(10).repeat(3, 1)  # every class, one-hot, equally often
    stats = evaluation.prediction_stats(balanced)
    assert stats["confidence"] == pytest.approx(1.0) and stats["diversity"] == pytest.approx(1.0)
    assert stats["score"] == pytest.approx(10.0) and stats["classes_covered"] == 10
    single = torch.zeros(30, 10)
    single[:, 4] = 1
    stats = evaluation.prediction_stats(single)
    assert stats["score"] == pytest.approx(1.0) and stats["diversity"] == pytest.approx(0.0, abs=1e-9)
    assert stats["classes_covered"] == 1
    uniform = torch.full((30, 10), 0.1)  # unsure about everything: no confidence, score 1
    stats = evaluation.prediction_stats(uniform)
    assert stats["confidence"] == pytest.approx(0.1) and stats["score"] == pytest.approx(1.0)
    two = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # marginal (3/4, 1/4)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    stats = evaluation.prediction_stats(two)
    assert stats["diversity"] == pytest.approx(h / math.log(2)) and stats["score"] == pytest.approx(math.exp(h))
    with pytest.raises(ValueError, match="distribution"):
        evaluation.prediction_stats(torch.ones(3, 10))


def test_image_report_matches_the_separate_metrics(tiny_classifier):
    images = _images(120, 8) * 2 - 1
    ref = evaluation.feature_stats(evaluation.classifier_outputs(tiny_classifier, _images(200, 9))[0])
    labels = torch.zeros(120, dtype=torch.long)
    report = evaluation.image_report(images, tiny_classifier, ref, value_range=(-1, 1), labels=labels)
    assert report["n"] == 120
    assert report["fid"] == pytest.approx(evaluation.fid_fmnist(images, tiny_classifier, ref, value_range=(-1, 1)))
    pair = evaluation.class_confidence_diversity(images, tiny_classifier, value_range=(-1, 1))
    assert all(report[k] == pytest.approx(v) for k, v in pair.items())
    _, probs = evaluation.classifier_outputs(tiny_classifier, images, (-1, 1))
    assert report["on_label"] == pytest.approx((probs.argmax(1) == 0).float().mean().item())


# --- nearest neighbours -------------------------------------------------------------------------------


def test_nearest_neighbours_finds_exact_copies_at_distance_zero():
    refs = _images(5000, 10)
    d, i = evaluation.nearest_neighbours(refs[[3, 4321]], refs, k=2, batch_size=1000)
    assert i[:, 0].tolist() == [3, 4321] and d[:, 0].tolist() == [0.0, 0.0]
    # the second neighbour: the nearest other image, computed directly
    for row, q in enumerate((3, 4321)):
        others = torch.cat([refs[:q], refs[q + 1:]]).flatten(1)
        direct = (others - refs[q].flatten()).square().sum(1).sqrt().min()
        assert d[row, 1].item() == pytest.approx(direct.item(), rel=1e-6)
    with pytest.raises(ValueError, match="same item shape"):
        evaluation.nearest_neighbours(torch.zeros(2, 4), refs)
    with pytest.raises(ValueError, match="k must be"):
        evaluation.nearest_neighbours(refs[:2], refs[:3], k=4)


def test_nearest_neighbours_known_answer():
    refs = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    d, i = evaluation.nearest_neighbours(torch.tensor([[3.0, 4.0], [6.0, 7.0]]), refs, k=3, batch_size=2)
    assert i.tolist() == [[1, 0, 2], [2, 1, 0]]
    assert d.tolist() == [[0.0, 5.0, 5.0], [1.0, pytest.approx(math.sqrt(18)), pytest.approx(math.sqrt(85))]]


def test_mean_and_std():
    mean, std = evaluation.mean_and_std([0.8, 0.9, 1.0])
    assert mean == pytest.approx(0.9) and std == pytest.approx(0.1)
    assert evaluation.mean_and_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        evaluation.mean_and_std([])


# --- KID, precision and recall, bootstrap ---------------------------------------------------------------


def test_mmd2_unbiased_by_hand():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [3.0]])
    k = lambda a, b: (a * b + 1) ** 3  # d = 1
    expected = (2 * k(0, 1)) / 2 + (2 * k(2, 3)) / 2 - 2 * (k(0, 2) + k(0, 3) + k(1, 2) + k(1, 3)) / 4
    assert evaluation.mmd2_unbiased(x, y) == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least 2"):
        evaluation.mmd2_unbiased(x[:1], y)


def test_kid_is_unbiased_for_the_same_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4000, 8, generator=g), torch.randn(4000, 8, generator=g)
    same_mean, same_std = evaluation.kid(a, b, subsets=50, subset_size=100, generator=g)
    # unbiased: the mean over 50 subsets sits within 3 standard errors of 0, even with 100 points a subset
    assert abs(same_mean) < 3 * same_std / 50 ** 0.5
    shifted_mean, _ = evaluation.kid(a, b + 0.5, subsets=50, subset_size=100, generator=g)
    assert shifted_mean > 10 * same_std / 50 ** 0.5


def test_knn_radii_and_precision_recall_on_a_known_case():
    real = torch.arange(10.0)[:, None]  # points 0..9: each one's nearest other point is 1 away
    assert evaluation.knn_radii(real, k=1).tolist() == [1.0] * 10
    assert evaluation.knn_radii(real, k=2)[0].item() == 2.0  # 0's second neighbour is 2
    inside, outside = torch.tensor([[4.5], [9.5]]), torch.tensor([[30.0], [31.0]])
    fake = torch.cat([inside, outside])  # half the samples on the real manifold, half far away
    # recall: the fakes' radii (k=1): 4.5->9.5 is 5, 30<->31 is 1; real points within 5 of 4.5 or 9.5: 0..9 all
    assert evaluation.precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 1.0}
    cluster = torch.tensor([[0.0], [0.2], [0.4]])  # samples on one corner of the data only
    pr = evaluation.precision_recall(real, cluster, k=1)
    assert pr["precision"] == 1.0 and pr["recall"] == pytest.approx(0.1)  # only the real point 0 is covered
    # the per-point membership behind the two shares: which fakes are inside the real manifold, and vice versa
    assert evaluation.manifold_membership(fake, real, k=1).tolist() == [True, True, False, False]
    assert evaluation.manifold_membership(real, cluster, k=1).tolist() == [True] + [False] * 9
    with pytest.raises(ValueError, match="same d"):
        evaluation.manifold_membership(fake, torch.zeros(5, 2), k=1)


def test_bootstrap_interval_covers_the_mean():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, generator=g) + 3.0
    value, low, high = evaluation.bootstrap_interval(lambda s: s.mean().item(), x, resamples=400, generator=g)
    assert value == pytest.approx(x.mean().item()) and low < value < high
    # the percentile interval of a mean: about +-1.96 standard errors (0.05 here), within 20% at 400 resamples
    assert high - low == pytest.approx(2 * 1.96 * x.std().item() / 20, rel=0.2)
    with pytest.raises(ValueError, match="level"):
        evaluation.bootstrap_interval(lambda s: 0.0, x, level=1.5)


def test_centred_bootstrap_puts_a_biased_statistic_back_inside_its_interval():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(50, 8, generator=g, dtype=torch.float64)  # a small sample of N(0, I)
    zero, eye = torch.zeros(8, dtype=torch.float64), torch.eye(8, dtype=torch.float64)

    def fid(s):
        return evaluation.frechet_distance(*evaluation.feature_stats(s), zero, eye)

    value, low, high = evaluation.bootstrap_interval(fid, f, resamples=200, generator=torch.Generator().manual_seed(1))
    assert low > value  # duplicates in each resample add FID's small-sample bias again: the value falls below
    v2, low2, high2 = evaluation.bootstrap_interval(fid, f, resamples=200, generator=torch.Generator().manual_seed(1),
                                                    centre=True)
    assert v2 == value and low2 < value < high2
    assert high2 - low2 == pytest.approx(high - low, rel=1e-9)  # only shifted, same width


def test_kid_interval_leaves_out_duplicate_pairs():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(300, 4, generator=g), torch.randn(300, 4, generator=g)  # the same distribution (seeded)
    value, low, high = evaluation.kid_interval(a, b, resamples=100, generator=torch.Generator().manual_seed(1))
    assert value == evaluation.mmd2_unbiased(a, b) and low < 0 < high
    # resampling with the plain estimator counts a duplicate's k(x, x) as a pair: biased upwards, 0 falls outside
    _, naive_low, _ = evaluation.bootstrap_interval(evaluation.mmd2_unbiased, a, b, resamples=100,
                                                    generator=torch.Generator().manual_seed(1))
    assert naive_low > 0
    shifted = evaluation.kid_interval(a, b + 0.5, resamples=100, generator=torch.Generator().manual_seed(1))
    assert shifted[1] > high


def test_kid_difference_interval_is_the_kid_difference_and_pairing_on_the_real_set_narrows_it():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 8, generator=g, dtype=torch.float64)
    a = torch.randn(300, 8, generator=g, dtype=torch.float64) + 0.2
    b = torch.randn(300, 8, generator=g, dtype=torch.float64) + 0.3
    value, low, high = evaluation.kid_difference_interval(real, a, b, resamples=300,
                                                          generator=torch.Generator().manual_seed(1))
    assert value == pytest.approx(evaluation.mmd2_unbiased(real, a) - evaluation.mmd2_unbiased(real, b), rel=1e-12)
    assert low < value < high < 0  # b is further from real than a, and the interval says so
    widths = [hi - lo for _, lo, hi in (evaluation.kid_interval(real, x, resamples=300,
                                                                generator=torch.Generator().manual_seed(2))
                                        for x in (a, b))]
    assert high - low < 0.8 * sum(widths)  # far narrower than two separate intervals side by side
    with pytest.raises(ValueError, match="resamples"):
        evaluation.kid_difference_interval(real, a, b, resamples=5)


def test_kid_difference_standard_errors_match_the_bootstrap_spread():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 8, generator=g, dtype=torch.float64)
    a = torch.randn(300, 8, generator=g, dtype=torch.float64) * 1.3 + 0.3  # both clearly unlike the real set
    b = torch.randn(300, 8, generator=g, dtype=torch.float64) * 0.8 + 0.5
    se = evaluation.kid_difference_standard_errors(real, a, b)
    _, low, high = evaluation.kid_difference_interval(real, a, b, resamples=1000,
                                                      generator=torch.Generator().manual_seed(1))
    widths = [hi - lo for _, lo, hi in (evaluation.kid_interval(real, x, resamples=1000,
                                                                generator=torch.Generator().manual_seed(2))
                                        for x in (a, b))]
    z = 2 * 1.959964  # a 95% interval of a normal spread is this many standard errors wide
    assert se["paired"] == pytest.approx((high - low) / z, rel=0.1)  # the paired bootstrap's spread
    assert se["unpaired"] == pytest.approx(math.hypot(*widths) / z, rel=0.1)  # two separate KIDs' spreads
    assert se["paired"] < 0.9 * se["unpaired"]  # the shared real set's part cancels
    kaa, kar = (a @ a.T / 8 + 1) ** 3, (a @ real.T / 8 + 1) ** 3  # one model twice: no real part is left
    own = 4 * ((kaa.sum(1) - kaa.diagonal()) / 299 - kar.mean(1)).var().item() / 300  # each generated set's term
    assert evaluation.kid_difference_standard_errors(real, a, a)["paired"] == pytest.approx(math.sqrt(2 * own))
    with pytest.raises(ValueError, match="at least 3"):
        evaluation.kid_difference_standard_errors(real[:2], a, b)
