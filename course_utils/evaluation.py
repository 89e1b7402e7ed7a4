"""Measuring generated images offline: FID-FMNIST, KID, precision/recall, memorisation, intervals.

Taught in notebook 02, section 4 (and extended in 07):

- :func:`frechet_distance` between two Gaussians fitted to features
  (:func:`feature_stats`);
- :func:`fid_fmnist` with the features of the course's
  :class:`~course_utils.classifier.FashionClassifier` ("FID-FMNIST"), against
  the reference statistics of the training images
  (:func:`course_utils.reference_stats.load_or_compute`, which caches them);
- :func:`class_confidence_diversity` (an Inception-Score-like pair) and
  :func:`image_report` (every number of 02's table from one classifier pass);
- :func:`nearest_neighbours`, the memorisation check; :func:`mean_and_std`
  (02's accuracies over seeds);
- notebook 07: :func:`kid` (unbiased at small sample sizes), :func:`precision_recall`
  on the feature manifold, :func:`bootstrap_interval`,
  :func:`kid_difference_interval` (two models against one real set, paired on it).

The text metrics of 05 and 07 (distinct-n, repetition, copied spans, known
words) are in :mod:`course_utils.text`.

FID-FMNIST follows Heusel et al. (2017) but with a 128-d feature space learnt
on Fashion-MNIST instead of Inception-v3's 2048-d ImageNet features: its
numbers are on another scale and are **not comparable** with published FIDs.
Compare FID-FMNIST values only with the same classifier and the same number
of samples (FID is biased upwards for small samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from course_utils.training import evaluating

# --- the Fréchet distance -------------------------------------------------------------------


def _check_stats(mu: torch.Tensor, sigma: torch.Tensor, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    mu = torch.as_tensor(mu, dtype=torch.float64).cpu()
    sigma = torch.as_tensor(sigma, dtype=torch.float64).cpu()
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must be a vector [d], got shape {tuple(mu.shape)}")
    if sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"sigma{which} must be [d, d] = [{len(mu)}, {len(mu)}] to match mu{which}, "
                         f"got shape {tuple(sigma.shape)}")
    if not (torch.isfinite(mu).all() and torch.isfinite(sigma).all()):
        raise ValueError(f"mu{which} and sigma{which} must be finite")
    return mu, sigma


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (via eigh)."""
    vals, vecs = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor,
) -> float:
    """The squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)``, in float64.
    The trace of the matrix square root uses the symmetric form ``S1^1/2 S2 S1^1/2``
    (same eigenvalues as ``S1 S2``), so two symmetric eigendecompositions replace
    scipy's general ``sqrtm`` and tiny negative eigenvalues from rounding are clipped.
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "2")
    if len(mu1) != len(mu2):
        raise ValueError(f"the two Gaussians have different dimensions: {len(mu1)} and {len(mu2)}")
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0)
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * eig.sqrt().sum()
    return max(float(value), 0.0)


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[d]`` and (unbiased) covariance ``[d, d]`` of ``[N, d]`` features, in float64."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be [N, d] with N >= 2, got shape {tuple(features.shape)}")
    f = features.detach().double().cpu()
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


# --- the classifier's view of a set of images ---------------------------------------------------


def _to_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"images must be [N, 1, 28, 28], got shape {tuple(images.shape)}")
    lo, hi = value_range
    if hi <= lo:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    if tuple(value_range) == (0.0, 1.0) and images.min() < -0.05:
        raise ValueError("images have values below 0: generator outputs are in [-1, 1]; pass value_range=(-1, 1)")
    return ((images.float() - lo) / (hi - lo)).clamp(0, 1)


def classifier_outputs(
    classifier: nn.Module, images: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 250,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features ``[N, d]`` and class probabilities ``[N, classes]`` on the CPU.

    The classifier is run in eval mode on its own device; images are
    ``[N, 1, 28, 28]`` in ``value_range`` (pass ``(-1, 1)`` for generator outputs). Batches of a few
    hundred keep the activations in a CPU's cache: 10,000 images take about half the time they take in
    batches of 1,000; an image's outputs do not depend on its batch (up to float rounding).
    """
    device = next(classifier.parameters()).device
    feats, probs = [], []
    with evaluating(classifier):
        for start in range(0, len(images), batch_size):
            x = _to_unit_range(images[start:start + batch_size], value_range).to(device)
            f = classifier.features(x)
            feats.append(f.float().cpu())
            probs.append(classifier.head(f).softmax(dim=1).float().cpu())
    return torch.cat(feats), torch.cat(probs)


def fid_fmnist(
    images: torch.Tensor, classifier: nn.Module, reference: tuple[torch.Tensor, torch.Tensor],
    value_range: tuple[float, float] = (0.0, 1.0),
) -> float:
    """FID-FMNIST of ``images`` against the Fashion-MNIST training set (lower is better; 0 = same statistics).

    ``reference`` is ``(mu, sigma)`` of the real images, e.g. from
    :func:`course_utils.reference_stats.load_or_compute`. Use the same number
    of images whenever two values are compared.
    """
    if len(images) < 2:
        raise ValueError("FID needs at least 2 images (and thousands for a stable value)")
    mu_ref, sigma_ref = reference
    features, _ = classifier_outputs(classifier, images, value_range)
    mu, sigma = feature_stats(features)
    return frechet_distance(mu, sigma, mu_ref, sigma_ref)


# --- the classifier's predictions -----------------------------------------------------------------


def class_confidence_diversity(
    images: torch.Tensor, classifier: nn.Module, value_range: tuple[float, float] = (0.0, 1.0),
    min_share: float = 0.01,
) -> dict:
    """An Inception-Score-like summary, read off the classifier's predictions (:func:`prediction_stats`)."""
    _, probs = classifier_outputs(classifier, images, value_range)
    return prediction_stats(probs, min_share)


def prediction_stats(probs: torch.Tensor, min_share: float = 0.01) -> dict:
    """Confidence, diversity, classes covered and score from ``[N, classes]`` probabilities.

    - ``confidence``: the mean top-class probability (high: each image looks
      clearly like *some* item);
    - ``diversity``: the entropy of the average predicted class distribution
      divided by ``log(classes)`` (1: all classes equally often; 0: one class);
    - ``classes_covered``: classes predicted for at least ``min_share`` of images;
    - ``score``: ``exp(E[KL(p(y|x) || p(y))])`` (the Inception Score's formula,
      from 1 to the number of classes).
    """
    if probs.ndim != 2 or len(probs) == 0 or probs.shape[1] < 2:
        raise ValueError(f"probs must be [N, classes] with N >= 1 and at least 2 classes, got {tuple(probs.shape)}")
    p = probs.double()
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
        raise ValueError("each row of probs must be a probability distribution (non-negative, summing to 1)")
    marginal = p.mean(0)
    entropy = -(marginal * marginal.clamp_min(1e-12).log()).sum()
    kl = (p * (p.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(1).mean()
    shares = torch.bincount(p.argmax(1), minlength=p.shape[1]).double() / len(p)
    return {
        "confidence": p.max(1).values.mean().item(),
        "diversity": (entropy / math.log(p.shape[1])).item(),
        "classes_covered": int((shares >= min_share).sum()),
        "score": kl.exp().item(),
    }


def image_report(
    images: torch.Tensor, classifier: nn.Module, reference: tuple[torch.Tensor, torch.Tensor],
    value_range: tuple[float, float] = (0.0, 1.0), labels: torch.Tensor | None = None,
) -> dict:
    """Every image metric of notebook 02's table from one pass of the classifier.

    ``fid`` (FID-FMNIST against ``reference``), the :func:`prediction_stats`,
    ``n`` (the number of images) and, given the ``labels`` the images should
    show, ``on_label``: the share the classifier assigns to that label.
    """
    features, probs = classifier_outputs(classifier, images, value_range)
    report = {"n": len(images), "fid": frechet_distance(*feature_stats(features), *reference)}
    report.update(prediction_stats(probs))
    if labels is not None:
        report["on_label"] = (probs.argmax(1) == labels.cpu()).float().mean().item()
    return report


# --- KID, precision and recall, bootstrap intervals (notebook 07) -------------------------------------------


def _polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """KID's kernel, ``(a . b / d + 1) ** 3`` (Bińkowski et al., 2018)."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased estimate of the squared MMD between two feature sets with KID's polynomial kernel.

    The diagonal terms ``k(x_i, x_i)`` are left out, so its expectation is exactly
    the population value whatever the sample sizes (0 when both come from the
    same distribution): unlike FID, KID has no small-sample bias.
    """
    x, y = x.double(), y.double()
    m, n = len(x), len(y)
    if m < 2 or n < 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need at least 2 points per set and one dimension, got {tuple(x.shape)}, {tuple(y.shape)}")
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kid(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 20, subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Kernel Inception Distance on features: mean and standard deviation of :func:`mmd2_unbiased` over subsets.

    Each subset draws ``subset_size`` features (without replacement) from each set.
    """
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    size = min(subset_size, len(real), len(fake))
    values = []
    for _ in range(subsets):
        r = real[torch.randperm(len(real), generator=generator)[:size]]
        f = fake[torch.randperm(len(fake), generator=generator)[:size]]
        values.append(mmd2_unbiased(r, f))
    return mean_and_std(values)


def knn_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """The distance from each point to its ``k``-th nearest *other* point of the same set."""
    if not 1 <= k < len(features):
        raise ValueError(f"k must be between 1 and the number of points - 1 ({len(features) - 1}), got {k}")
    dist = torch.cdist(features.double(), features.double(), compute_mode="donot_use_mm_for_euclid_dist")
    return dist.kthvalue(k + 1, dim=1).values  # the 1st smallest is the point itself, at 0


def _inside_manifold(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    dist = torch.cdist(queries.double(), support.double(), compute_mode="donot_use_mm_for_euclid_dist")
    return (dist <= radii[None, :]).any(dim=1)


def manifold_membership(queries: torch.Tensor, support: torch.Tensor, k: int = 3) -> torch.Tensor:
    """For each query point, whether it lies inside the k-NN manifold of ``support`` (a bool ``[Q]``).

    Its mean is the precision (queries: generated, support: real) or the recall
    (the other way round) of :func:`precision_recall`; bootstrapping its rows gives
    an interval for that share, for this fixed manifold (notebook 07, section 2).
    """
    if queries.ndim != 2 or support.ndim != 2 or queries.shape[1] != support.shape[1]:
        raise ValueError(f"queries and support must be [N, d] with the same d, got {tuple(queries.shape)}, "
                         f"{tuple(support.shape)}")
    return _inside_manifold(queries, support, knn_radii(support, k))


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall on a feature manifold (Kynkäänniemi et al., 2019).

    Each point's manifold is a ball reaching its ``k``-th nearest neighbour in
    its own set. **Precision**: the share of generated points inside the real
    manifold (are samples realistic?). **Recall**: the share of real points
    inside the generated manifold (is the data's variety covered?).
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must be [N, d] with the same d, got {tuple(real.shape)}, {tuple(fake.shape)}")
    precision = _inside_manifold(fake, real, knn_radii(real, k)).double().mean().item()
    recall = _inside_manifold(real, fake, knn_radii(fake, k)).double().mean().item()
    return {"precision": precision, "recall": recall}


def bootstrap_interval(
    statistic: Any, *samples: torch.Tensor, resamples: int = 200, level: float = 0.95,
    generator: torch.Generator | None = None, centre: bool = False,
) -> tuple[float, float, float]:
    """``(value, low, high)``: a statistic and its percentile bootstrap interval.

    ``statistic(*samples)`` returns a float; each resample draws every sample's
    rows with replacement, independently. ``level`` is the interval's coverage.

    ``centre=True`` shifts the interval by ``value - median(resampled values)``.
    Use it for a statistic with a small-sample bias such as FID: the duplicates
    in a resample add that bias once more, so the plain percentile interval sits
    above the value (notebook 07, section 2.5); shifted, it keeps the
    bootstrap's spread around the value measured.
    """
    if not 0 < level < 1 or resamples < 10:
        raise ValueError(f"need 0 < level < 1 and at least 10 resamples, got {level}, {resamples}")
    value = float(statistic(*samples))
    draws = []
    for _ in range(resamples):
        picked = [s[torch.randint(len(s), (len(s),), generator=generator)] for s in samples]
        draws.append(float(statistic(*picked)))
    t = torch.tensor(draws, dtype=torch.float64)
    alpha = (1 - level) / 2
    shift = value - t.median().item() if centre else 0.0
    return value, torch.quantile(t, alpha).item() + shift, torch.quantile(t, 1 - alpha).item() + shift


def kid_interval(
    real: torch.Tensor, fake: torch.Tensor, resamples: int = 200, level: float = 0.95,
    generator: torch.Generator | None = None,
) -> tuple[float, float, float]:
    """``(value, low, high)``: :func:`mmd2_unbiased` and its percentile bootstrap interval, computed fast.

    The three kernel matrices are computed once; a resample is described by
    how often it drew each point (counts ``c``), so its kernel sums are
    ``c^T K c``. Pairs that are the *same* original point twice (a duplicate
    drawn with replacement, ``sum_j c_j^2`` of them) are left out, like the
    diagonal, so the resampled values stay unbiased (notebook 07, section 2.5).
    """
    if not 0 < level < 1 or resamples < 10:
        raise ValueError(f"need 0 < level < 1 and at least 10 resamples, got {level}, {resamples}")
    value = mmd2_unbiased(real, fake)
    x, y = real.double(), fake.double()
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)

    def counts(n: int) -> torch.Tensor:
        return torch.bincount(torch.randint(n, (n,), generator=generator), minlength=n).double()

    def within(k: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        same = c.square()  # ordered pairs (i, j) of resample positions that hold the same point
        return (c @ k @ c - (same * k.diagonal()).sum()) / (c.sum() ** 2 - same.sum())

    draws = []
    for _ in range(resamples):
        cx, cy = counts(len(x)), counts(len(y))
        draws.append(float(within(kxx, cx) + within(kyy, cy) - 2 * (cx @ kxy @ cy) / (cx.sum() * cy.sum())))
    t = torch.tensor(draws, dtype=torch.float64)
    alpha = (1 - level) / 2
    return value, torch.quantile(t, alpha).item(), torch.quantile(t, 1 - alpha).item()


def kid_difference_interval(
    real: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor, resamples: int = 200, level: float = 0.95,
    generator: torch.Generator | None = None,
) -> tuple[float, float, float]:
    """``(value, low, high)``: ``KID(real, fake_a) - KID(real, fake_b)`` and its percentile bootstrap interval.

    The two KIDs share the real set, so every resample draws the real points **once** and uses the same draw
    for both (a paired resample: the real set's own noise cancels in the difference); the two generated sets
    are independent samples and are drawn independently. Duplicate pairs are left out as in
    :func:`kid_interval`.
    """
    if not 0 < level < 1 or resamples < 10:
        raise ValueError(f"need 0 < level < 1 and at least 10 resamples, got {level}, {resamples}")
    value = mmd2_unbiased(real, fake_a) - mmd2_unbiased(real, fake_b)
    x, ya, yb = real.double(), fake_a.double(), fake_b.double()
    kaa, kbb = _polynomial_kernel(ya, ya), _polynomial_kernel(yb, yb)  # k(real, real) cancels in the difference
    kxa, kxb = _polynomial_kernel(x, ya), _polynomial_kernel(x, yb)

    def counts(n: int) -> torch.Tensor:
        return torch.bincount(torch.randint(n, (n,), generator=generator), minlength=n).double()

    def within(k: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        same = c.square()
        return (c @ k @ c - (same * k.diagonal()).sum()) / (c.sum() ** 2 - same.sum())

    draws = []
    for _ in range(resamples):
        cx, ca, cb = counts(len(x)), counts(len(ya)), counts(len(yb))  # the real draw cx serves both KIDs
        kid_a = within(kaa, ca) - 2 * (cx @ kxa @ ca) / (cx.sum() * ca.sum())
        kid_b = within(kbb, cb) - 2 * (cx @ kxb @ cb) / (cx.sum() * cb.sum())
        draws.append(float(kid_a - kid_b))  # the real-real term within(kxx, cx) is the same in both: it cancels
    t = torch.tensor(draws, dtype=torch.float64)
    alpha = (1 - level) / 2
    return value, torch.quantile(t, alpha).item(), torch.quantile(t, 1 - alpha).item()


def kid_difference_standard_errors(
    real: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor,
) -> dict[str, float]:
    """First-order standard errors of ``KID(real, fake_a) - KID(real, fake_b)``, paired and unpaired, no resampling.

    Each KID is to first order a sum of one term per point (its Hoeffding projection): a real point's term is
    twice its mean kernel value with the other real points minus twice its mean with the generated set, and
    likewise for a generated point. ``paired``: one real set serves both KIDs, so the real-real part cancels and
    a real point contributes ``2 (mean k(x_i, b) - mean k(x_i, a))``; ``unpaired``: as if each KID had a real set
    of its own, the two KIDs' variances added. The generated sets count the same way in both. Close to KID's
    bootstrap spread when both models differ clearly from the real data; near KID = 0 the second-order terms,
    left out here, add to it (notebook 07, section 2.5).
    """
    x, ya, yb = real.double(), fake_a.double(), fake_b.double()
    if min(len(x), len(ya), len(yb)) < 3 or not x.shape[1] == ya.shape[1] == yb.shape[1]:
        raise ValueError(f"need at least 3 points per set of one dimension, got {tuple(x.shape)}, "
                         f"{tuple(ya.shape)}, {tuple(yb.shape)}")

    def row_means(a: torch.Tensor, b: torch.Tensor, same: bool) -> torch.Tensor:
        k = _polynomial_kernel(a, b)
        return (k.sum(1) - k.diagonal()) / (len(b) - 1) if same else k.mean(1)

    g_xx, g_xa, g_xb = row_means(x, x, True), row_means(x, ya, False), row_means(x, yb, False)
    own = sum(4 * (row_means(y, y, True) - row_means(y, x, False)).var().item() / len(y) for y in (ya, yb))
    paired = 4 * (g_xb - g_xa).var().item() / len(x) + own
    unpaired = 4 * ((g_xx - g_xa).var().item() + (g_xx - g_xb).var().item()) / len(x) + own
    return {"paired": math.sqrt(paired), "unpaired": math.sqrt(unpaired)}


# --- memorisation -------------------------------------------------------------------------------


def nearest_neighbours(
    queries: torch.Tensor, references: torch.Tensor, k: int = 1, batch_size: int = 4096, margin: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean (pixel-space) distances ``[Q, k]`` and indices ``[Q, k]`` of each query's ``k`` nearest references.

    The memorisation check: a generated image much closer to one training image
    than test images are to theirs suggests the generator copies its data.
    Both inputs must be in the same value range.

    The fast path of ``torch.cdist`` computes ``|a|^2 + |b|^2 - 2ab`` with a
    matrix product, which in float32 cancels to about 0.005 instead of 0 for an
    exact copy. It is used only to pick ``k + margin`` candidates per query; their
    distances are then computed directly, from the differences, so an exact
    copy is at distance exactly 0.
    """
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(f"queries {tuple(queries.shape[1:])} and references {tuple(references.shape[1:])} "
                         "must have the same item shape")
    if k < 1 or k > len(references):
        raise ValueError(f"k must be between 1 and the number of references ({len(references)}), got {k}")
    q = queries.detach().float().cpu().flatten(1)
    best_d, best_i = [], []
    for start in range(0, len(references), batch_size):
        r = references[start:start + batch_size].detach().float().cpu().flatten(1)
        approx = torch.cdist(q, r, compute_mode="use_mm_for_euclid_dist")
        cand = approx.topk(min(k + margin, len(r)), dim=1, largest=False).indices  # [Q, c]
        exact = torch.stack([(q[j] - r[cand[j]]).square().sum(1).sqrt() for j in range(len(q))])
        d, pos = exact.topk(min(k, len(r)), dim=1, largest=False)
        best_d.append(d)
        best_i.append(cand.gather(1, pos) + start)
    d, i = torch.cat(best_d, 1), torch.cat(best_i, 1)
    order = d.argsort(dim=1, stable=True)[:, :k]
    return d.gather(1, order), i.gather(1, order)


# --- a value over seeds (notebook 02, section 5) ----------------------------------------------------------


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (sample) standard deviation, e.g. of test accuracies over seeds (0 for a single value)."""
    if len(values) == 0:
        raise ValueError("mean_and_std needs at least one value")
    t = torch.tensor(list(values), dtype=torch.float64)
    return t.mean().item(), (t.std().item() if len(t) > 1 else 0.0)
