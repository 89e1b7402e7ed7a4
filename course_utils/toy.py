"""2-D toy data sets, small enough to see a whole distribution at once.

Used in notebook 01 (fitting a Gaussian mixture) and notebook 02 (the toy GAN
and mode collapse). Every sampler takes a ``torch.Generator`` so a notebook's
data are the same on every run.
"""

from __future__ import annotations

import math

import torch


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")


def ring_centres(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The ``[modes, 2]`` centres of :func:`ring_of_gaussians`, evenly spaced on a circle."""
    if modes < 1:
        raise ValueError(f"modes must be at least 1, got {modes}")
    angles = torch.arange(modes, dtype=torch.float32) * (2 * math.pi / modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def ring_of_gaussians(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.05, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` points from an equal mixture of ``modes`` Gaussians on a circle (the classic GAN toy)."""
    _check_n(n)
    centres = ring_centres(modes, radius)
    which = torch.randint(modes, (n,), generator=generator)
    return centres[which] + std * torch.randn(n, 2, generator=generator)


def two_moons(n: int, noise: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points on two interleaved half circles, with Gaussian noise."""
    _check_n(n)
    upper = torch.rand(n, generator=generator) < 0.5
    t = torch.rand(n, generator=generator) * math.pi
    x = torch.where(upper, t.cos(), 1 - t.cos())
    y = torch.where(upper, t.sin(), 0.5 - t.sin())
    return torch.stack([x, y], dim=1) + noise * torch.randn(n, 2, generator=generator)


def concentric_rings(
    n: int, radii: tuple[float, ...] = (1.0, 2.5), noise: float = 0.1, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` points on concentric circles (equal numbers per ring on average), with noise."""
    _check_n(n)
    r = torch.tensor(radii, dtype=torch.float32)[torch.randint(len(radii), (n,), generator=generator)]
    t = torch.rand(n, generator=generator) * 2 * math.pi
    return torch.stack([r * t.cos(), r * t.sin()], dim=1) + noise * torch.randn(n, 2, generator=generator)
