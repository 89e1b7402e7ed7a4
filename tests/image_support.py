"""What the image-metric tests share: a tiny untrained classifier and seeded random images."""

from __future__ import annotations

import torch

from course_utils.classifier import FashionClassifier


def tiny_classifier() -> FashionClassifier:
    """A seeded, untrained classifier small enough for unit tests (its features still separate image sets)."""
    torch.manual_seed(0)
    return FashionClassifier(channels=(4, 8, 8), hidden=16).eval()


def random_images(n: int, seed: int) -> torch.Tensor:
    """``n`` seeded uniform-noise images, [n, 1, 28, 28]."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
