"""course_utils.progress (quiet in CI) and course_utils.toy (the 2-D data sets)."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import toy
from course_utils.progress import progress, quiet


@pytest.mark.parametrize(
    "quiet_var,ci,expected",
    [("1", None, True), ("0", "true", False), (None, "true", True), (None, None, False), ("yes", None, True)],
)
def test_quiet_follows_course_quiet_then_ci(monkeypatch, quiet_var, ci, expected):
    for name, value in (("COURSE_QUIET", quiet_var), ("CI", ci)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert quiet() is expected
    bar = progress(range(3))
    assert bar.disable is expected
    assert list(bar) == [0, 1, 2]


def test_ring_of_gaussians_sits_on_its_modes():
    g = torch.Generator().manual_seed(0)
    pts = toy.ring_of_gaussians(4000, modes=8, radius=2.0, std=0.05, generator=g)
    centres = toy.ring_centres(8, 2.0)
    assert pts.shape == (4000, 2)
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0))
    nearest = torch.cdist(pts, centres).min(dim=1)
    assert nearest.values.max() < 0.05 * 6
    counts = torch.bincount(nearest.indices, minlength=8)
    assert counts.min() > 400  # every mode gets about 500 of the 4000 points


def test_toy_sets_are_reproducible_and_shaped():
    for sampler in (toy.two_moons, toy.concentric_rings, toy.ring_of_gaussians):
        a = sampler(100, generator=torch.Generator().manual_seed(3))
        b = sampler(100, generator=torch.Generator().manual_seed(3))
        assert a.shape == (100, 2) and torch.equal(a, b)
        with pytest.raises(ValueError, match="positive int"):
            sampler(0)


def test_concentric_rings_radii():
    pts = toy.concentric_rings(2000, radii=(1.0, 3.0), noise=0.0, generator=torch.Generator().manual_seed(1))
    r = pts.norm(dim=1)
    assert torch.all(torch.isclose(r, torch.tensor(1.0)) | torch.isclose(r, torch.tensor(3.0)))
    assert math.isclose((r < 2).float().mean().item(), 0.5, abs_tol=0.05)
