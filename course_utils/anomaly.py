"""Anomaly detection with a VAE's likelihood, and where it goes wrong (notebook 03, section 4).

- :func:`neg_elbo_per_image`: the -ELBO of each image, the raw anomaly score
  (higher: less likely under the model);
- :func:`png_bits`: each image's size as a lossless PNG, the complexity
  correction of Serrà et al. (2020): the -ELBO in bits minus the PNG bits;
- :func:`auroc`: how well a score separates normal from anomalous items
  (scikit-learn's ``roc_auc_score``; notebook 03's exercise counts the pairs).
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from course_utils.vae import ELBO_SEED, LatentModel, check_images, elbo_parts


def neg_elbo_per_image(model: LatentModel, images: torch.Tensor, seed: int = ELBO_SEED) -> torch.Tensor:
    """``[N]``: -ELBO of each image (nats), one z each (:func:`course_utils.vae.elbo_parts`): the anomaly score."""
    recon, kl = elbo_parts(model, images, seed)
    return recon + kl.sum(1)


def png_bits(images: torch.Tensor) -> torch.Tensor:
    """``[N]``: the size in bits of each image saved as an 8-bit grey PNG (lossless).

    A generic compressor's code length L(x) measures how *complex* an image is; Serrà et al.
    (2020) subtract it from a model's code length, -log2 p(x), to correct the likelihood's
    preference for simple images.
    """
    check_images(images)
    pixels = (images[:, 0].detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    sizes = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="PNG", optimize=True)
        sizes.append(8 * buffer.tell())
    return torch.tensor(sizes, dtype=torch.float64)


def auroc(normal: torch.Tensor, anomalous: torch.Tensor) -> float:
    """Area under the ROC curve of a score meant to be **higher** for ``anomalous`` (scikit-learn's).

    1: every anomaly scores above every normal item; 0.5: no better than chance; below 0.5: the
    score ranks the wrong way round.
    """
    normal, anomalous = (torch.as_tensor(s, dtype=torch.float64).flatten() for s in (normal, anomalous))
    if len(normal) == 0 or len(anomalous) == 0:
        raise ValueError("auroc needs at least one normal and one anomalous score")
    if not (torch.isfinite(normal).all() and torch.isfinite(anomalous).all()):
        raise ValueError("scores must be finite")
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    return float(roc_auc_score(labels, torch.cat([normal, anomalous]).numpy()))
