"""FID-FMNIST's reference statistics, computed once and cached on disk (notebook 02, section 4; also 03 and 07).

FID compares the statistics of generated images with those of real ones: the
mean and covariance of the classifier's features of the 60,000 Fashion-MNIST
training images (:mod:`course_utils.evaluation` computes them and the
distance). Computing them takes a pass over the whole training set, so
:func:`load_or_compute` keeps them in a safetensors file with a card, keyed by

- the classifier's :func:`model_fingerprint` (other weights, other features),
- the images: their source, sha256 (:func:`images_digest`, or the data
  registry's checksum for the training set: :func:`training_images_key`) and count,

and never returns statistics whose key differs. The shipped copy, next to the
shipped classifier, is written by ``python -m course_utils.train classifier``
(:func:`save_reference`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils import checkpoints, datasets
from course_utils.checkpoints import CheckpointError, load_tensors, save_tensors
from course_utils.data import FILES, data_dir
from course_utils.evaluation import classifier_outputs, feature_stats

REFERENCE_NAME = "fmnist_fid_reference"
TRAIN_IMAGES = "fashion-mnist/train-images"


def model_fingerprint(model: nn.Module) -> str:
    """A sha256 of a model's weights (names, shapes and values), to key cached statistics."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def images_digest(images: torch.Tensor) -> str:
    """A sha256 of an image tensor's shape and float32 values: what a cached statistic was computed on."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def training_images_key() -> dict[str, Any]:
    """The key of the default reference: the 60,000 Fashion-MNIST training images, pinned by the data registry."""
    return {"source": TRAIN_IMAGES, "images_sha256": FILES[TRAIN_IMAGES].sha256, "images": 60_000}


def _key(images: torch.Tensor | None) -> dict[str, Any]:
    if images is None:
        return training_images_key()
    return {"source": "tensor", "images_sha256": images_digest(images), "images": len(images)}


def _load(path: Path, fingerprint: str, key: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The statistics at ``path`` if they exist, verify, and were made by this classifier from these images."""
    try:
        tensors, meta = load_tensors(path)
    except CheckpointError:
        return None
    if meta.get("classifier_fingerprint") != fingerprint or any(meta.get(k) != v for k, v in key.items()):
        return None
    mu, sigma = tensors.get("mu"), tensors.get("sigma")
    if mu is None or sigma is None or mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        return None
    return mu, sigma


def save_reference(
    mu: torch.Tensor, sigma: torch.Tensor, path: str | Path, classifier: nn.Module, key: dict[str, Any],
) -> Path:
    """Write reference statistics with the card fields :func:`load_or_compute` checks on load."""
    return save_tensors({"mu": mu, "sigma": sigma}, path, {
        "what": "FID-FMNIST reference statistics: mean and covariance of the classifier's features",
        "classifier_fingerprint": model_fingerprint(classifier), **key,
    })


def load_or_compute(
    classifier: nn.Module, images: torch.Tensor | None = None, cache_dir: str | Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FID-FMNIST reference statistics (mean, covariance of the classifier's features of some real images).

    By default the images are the 60,000 Fashion-MNIST training images. The
    statistics are keyed by the classifier's :func:`model_fingerprint`, the image
    source and its sha256, and the image count; a file whose key differs is
    ignored (never returned for other images). Lookup order: ``cache_dir`` if
    given, else the shipped ``data/checkpoints`` then the data cache's ``cache/``
    folder; computed statistics are saved to the last of these (never to the
    shipped folder).
    """
    fingerprint, key = model_fingerprint(classifier), _key(images)
    cached_name = f"{REFERENCE_NAME}_{fingerprint[:12]}_{key['images_sha256'][:12]}_{key['images']}"
    folders = [Path(cache_dir)] if cache_dir else [checkpoints.SHIPPED_DIR, data_dir() / "cache"]
    for folder in folders:
        for path in (folder / REFERENCE_NAME, folder / cached_name):
            found = _load(path, fingerprint, key)
            if found is not None:
                return found
    if images is None:
        images = datasets.image_tensors("fashion-mnist", train=True)[0]
    mu, sigma = feature_stats(classifier_outputs(classifier, images)[0])
    try:
        save_reference(mu, sigma, folders[-1] / cached_name, classifier, key)
    except OSError:  # a read-only checkout: the statistics are simply recomputed next time
        pass
    return mu, sigma
