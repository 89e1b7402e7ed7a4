"""Measuring generative models offline (notebook 02, sections 2 and 4).

- Toy GAN (section 2): :func:`mode_report` (with :func:`modes_covered` and
  :func:`high_quality_share`) counts how many modes of a ring of Gaussians a
  generator reaches and how many of its samples land on one.
- Images (section 4): :func:`frechet_distance` between two Gaussians fitted to
  features, :func:`fid_fmnist` with the features of the course's
  :class:`~course_utils.models.FashionClassifier` ("FID-FMNIST"),
  :func:`class_confidence_diversity` (an Inception-Score-like pair) and
  :func:`nearest_neighbours` (the memorisation check).

FID-FMNIST follows Heusel et al. (2017) but with a 128-d feature space learnt
on Fashion-MNIST instead of Inception-v3's 2048-d ImageNet features: its
numbers are on another scale and are **not comparable** with published FIDs.
Compare FID-FMNIST values only with the same classifier and the same number
of samples (FID is biased upwards for small samples).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

# --- toy GAN: modes of a ring of Gaussians ----------------------------------------------


def _assign_modes(samples: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples [N, d] and centres [K, d] must agree; got {tuple(samples.shape)}, "
                         f"{tuple(centres.shape)}")
    dist = torch.cdist(samples.detach().float().cpu(), centres.float().cpu())
    return dist.min(dim=1)


def high_quality_share(samples: torch.Tensor, centres: torch.Tensor, std: float, threshold: float = 3.0) -> float:
    """The share of samples within ``threshold`` standard deviations of their nearest mode centre."""
    nearest, _ = _assign_modes(samples, centres)
    return (nearest <= threshold * std).float().mean().item()


def modes_covered(
    samples: torch.Tensor, centres: torch.Tensor, std: float, threshold: float = 3.0, min_share: float = 0.02,
) -> int:
    """How many modes get at least ``min_share`` of all samples as high-quality samples."""
    return mode_report(samples, centres, std, threshold, min_share)["modes_covered"]


def mode_report(
    samples: torch.Tensor, centres: torch.Tensor, std: float, threshold: float = 3.0, min_share: float = 0.02,
) -> dict:
    """Modes covered, share of high-quality samples and the per-mode counts, in one dict.

    A sample is *high quality* if it lies within ``threshold * std`` of its
    nearest centre; a mode is *covered* if at least ``min_share`` of all samples
    are high-quality samples of that mode (the definitions of the unrolled-GAN
    and VEEGAN papers, with a share instead of a fixed count). ``modes_nearest``
    ignores quality: the modes that are the nearest centre of at least
    ``min_share`` of the samples (a collapsed generator has one or two).
    """
    nearest, which = _assign_modes(samples, centres)
    good = nearest <= threshold * std
    counts = torch.bincount(which[good], minlength=len(centres))
    near = torch.bincount(which, minlength=len(centres))
    return {
        "modes_covered": int((counts >= min_share * len(samples)).sum()),
        "modes_nearest": int((near >= min_share * len(samples)).sum()),
        "modes": len(centres),
        "high_quality_share": good.float().mean().item(),
        "counts": counts.tolist(),
    }


# --- the Fréchet distance -------------------------------------------------------------------


def _check_stats(mu: torch.Tensor, sigma: torch.Tensor, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    mu = torch.as_tensor(mu, dtype=torch.float64).cpu()
    sigma = torch.as_tensor(sigma, dtype=torch.float64).cpu()
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must be a vector [d], got shape {tuple(mu.shape)}")
    if sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"sigma{which} must be [d, d] = [{len(mu)}, {len(mu)}] to match mu{which}, "
                         f"got shape {tuple(sigma.shape)}")
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


# --- FID-FMNIST -------------------------------------------------------------------------------


def _to_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"images must be [N, 1, 28, 28], got shape {tuple(images.shape)}")
    lo, hi = value_range
    if value_range == (0.0, 1.0) and images.min() < -0.05:
        raise ValueError("images have values below 0: generator outputs are in [-1, 1]; pass value_range=(-1, 1)")
    return ((images.float() - lo) / (hi - lo)).clamp(0, 1)


@torch.no_grad()
def classifier_outputs(
    classifier: nn.Module, images: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features ``[N, d]`` and class probabilities ``[N, classes]`` on the CPU.

    The classifier is run in eval mode on its own device; images are
    ``[N, 1, 28, 28]`` in ``value_range`` (pass ``(-1, 1)`` for generator outputs).
    """
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    feats, probs = [], []
    try:
        for start in range(0, len(images), batch_size):
            x = _to_unit_range(images[start:start + batch_size], value_range).to(device)
            f = classifier.features(x)
            feats.append(f.float().cpu())
            probs.append(classifier.head(f).softmax(dim=1).float().cpu())
    finally:
        classifier.train(was_training)
    return torch.cat(feats), torch.cat(probs)


def model_fingerprint(model: nn.Module) -> str:
    """A sha256 of a model's weights (names, shapes and values), to key cached statistics."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


REFERENCE_NAME = "fmnist_fid_reference"


def reference_stats(
    classifier: nn.Module, images: torch.Tensor | None = None, cache_dir: str | Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FID-FMNIST reference statistics: the classifier's features of the 60,000 training images.

    Looks first for ``fmnist_fid_reference.safetensors`` in ``cache_dir``
    (default: the shipped ``data/checkpoints``, then the ``cache`` folder of the
    data directory) made with *this* classifier (its :func:`model_fingerprint`),
    else computes them from ``images`` (default: Fashion-MNIST train) and caches them.
    """
    from course_utils.checkpoints import SHIPPED_DIR, CheckpointError, load_tensors, save_tensors
    from course_utils.data import data_dir, image_tensors

    fingerprint = model_fingerprint(classifier)
    folders = [Path(cache_dir)] if cache_dir else [SHIPPED_DIR, data_dir() / "cache"]
    if images is None:
        for folder in folders:
            for path in (folder / REFERENCE_NAME, folder / f"{REFERENCE_NAME}_{fingerprint[:12]}"):
                try:
                    tensors, meta = load_tensors(path)
                except CheckpointError:
                    continue
                if meta.get("classifier_fingerprint") == fingerprint:
                    return tensors["mu"], tensors["sigma"]
        images = image_tensors("fashion-mnist", train=True)[0]
    features, _ = classifier_outputs(classifier, images)
    mu, sigma = feature_stats(features)
    target = folders[-1] / f"{REFERENCE_NAME}_{fingerprint[:12]}"
    try:
        save_tensors({"mu": mu, "sigma": sigma}, target, {
            "what": "FID-FMNIST reference statistics (mean, covariance of classifier features)",
            "classifier_fingerprint": fingerprint, "images": len(images),
        })
    except OSError:  # a read-only checkout: the statistics are simply recomputed next time
        pass
    return mu, sigma


def fid_fmnist(
    images: torch.Tensor, classifier: nn.Module, reference: tuple[torch.Tensor, torch.Tensor] | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> float:
    """FID-FMNIST of ``images`` against the Fashion-MNIST training set (lower is better; 0 = same statistics).

    ``reference`` is ``(mu, sigma)`` from :func:`reference_stats` (computed or
    loaded when omitted). Use the same number of images whenever two values
    are compared.
    """
    if len(images) < 2:
        raise ValueError("FID needs at least 2 images (and thousands for a stable value)")
    mu_ref, sigma_ref = reference if reference is not None else reference_stats(classifier)
    features, _ = classifier_outputs(classifier, images, value_range)
    mu, sigma = feature_stats(features)
    return frechet_distance(mu, sigma, mu_ref, sigma_ref)


def class_confidence_diversity(
    images: torch.Tensor, classifier: nn.Module, value_range: tuple[float, float] = (0.0, 1.0),
    min_share: float = 0.01,
) -> dict:
    """An Inception-Score-like pair, read off the classifier's predictions.

    - ``confidence``: the mean top-class probability (high: each image looks
      clearly like *some* item);
    - ``diversity``: the entropy of the average predicted class distribution
      divided by ``log(classes)`` (1: all classes equally often; 0: one class);
    - ``classes_covered``: classes predicted for at least ``min_share`` of images;
    - ``score``: ``exp(E[KL(p(y|x) || p(y))])`` (the Inception Score's formula,
      from 1 to the number of classes).
    """
    _, probs = classifier_outputs(classifier, images, value_range)
    return prediction_stats(probs, min_share)


def prediction_stats(probs: torch.Tensor, min_share: float = 0.01) -> dict:
    """:func:`class_confidence_diversity` from already computed ``[N, classes]`` probabilities."""
    p = probs.double()
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
    """Every image metric of notebook 02 from one pass of the classifier.

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


def nearest_neighbours(
    queries: torch.Tensor, references: torch.Tensor, k: int = 1, batch_size: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean (pixel-space) distances ``[Q, k]`` and indices ``[Q, k]`` of each query's ``k`` nearest references.

    The memorisation check: a generated image much closer to one training image
    than test images are to theirs suggests the generator copies its data.
    Both inputs must be in the same value range.
    """
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(f"queries {tuple(queries.shape[1:])} and references {tuple(references.shape[1:])} "
                         "must have the same item shape")
    q = queries.detach().float().cpu().flatten(1)
    best_d, best_i = [], []
    for start in range(0, len(references), batch_size):
        r = references[start:start + batch_size].detach().float().cpu().flatten(1)
        d, i = torch.cdist(q, r).topk(min(k, len(r)), dim=1, largest=False)
        best_d.append(d)
        best_i.append(i + start)
    d, i = torch.cat(best_d, 1), torch.cat(best_i, 1)
    order = d.argsort(dim=1)[:, :k]
    return d.gather(1, order), i.gather(1, order)


def summarise(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (sample) standard deviation, e.g. of test accuracies over seeds."""
    t = torch.tensor(list(values), dtype=torch.float64)
    return t.mean().item(), (t.std().item() if len(t) > 1 else 0.0)
