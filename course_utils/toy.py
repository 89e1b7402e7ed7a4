"""2-D toy data sets, small enough to see a whole distribution at once, and the mode counts.

Used in notebook 01 (fitting a Gaussian mixture) and notebook 02 (the toy GAN
and mode collapse, section 2: :func:`mode_report`). Every sampler takes a
``torch.Generator`` so a notebook's data are the same on every run.
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


# --- measuring a toy GAN on a ring of Gaussians (notebook 02, section 2) ---------------------


def _assign_modes(samples: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples [N, d] and centres [K, d] must agree; got {tuple(samples.shape)}, "
                         f"{tuple(centres.shape)}")
    dist = torch.cdist(samples.detach().float().cpu(), centres.float().cpu(),
                       compute_mode="donot_use_mm_for_euclid_dist")
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
    ``min_share`` of the samples. ``effective_modes`` is ``exp(H)``, with ``H`` the
    entropy of how the high-quality samples spread over the modes: K for an even
    spread over K modes, 1 when they all sit on one (0 with no high-quality sample).
    """
    if std <= 0 or threshold <= 0:
        raise ValueError(f"std and threshold must be positive, got {std} and {threshold}")
    nearest, which = _assign_modes(samples, centres)
    good = nearest <= threshold * std
    counts = torch.bincount(which[good], minlength=len(centres))
    near = torch.bincount(which, minlength=len(centres))
    return {
        "modes_covered": int((counts >= min_share * len(samples)).sum()),
        "modes_nearest": int((near >= min_share * len(samples)).sum()),
        "modes": len(centres),
        "high_quality_share": good.float().mean().item(),
        "effective_modes": effective_number(counts),
        "counts": counts.tolist(),
    }


def effective_number(counts: torch.Tensor) -> float:
    """``exp`` of the entropy of a histogram: how many equally filled bins would have the same entropy."""
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0].double() / total
    return math.exp(float(-(p * p.log()).sum()))
