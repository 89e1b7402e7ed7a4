"""Images for the VAE tests (test_vae, test_anomaly, test_benchmarks): small, seeded and quick to learn."""

from __future__ import annotations

import torch


def bar_images(n: int, seed: int = 0) -> torch.Tensor:
    """Seeded grey-level images: a bright bar at a random height on a dark background (a 1-D latent to learn)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.1
    rows = torch.randint(0, 22, (n,), generator=g)
    for i, r in enumerate(rows.tolist()):
        x[i, :, r:r + 6, 4:24] += 0.85
    return x.clamp(0, 1)
