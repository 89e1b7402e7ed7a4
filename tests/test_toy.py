"""course_utils.toy: the 2-D data sets and the mode counts of the toy GAN."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import toy


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


def test_mode_report_on_real_and_collapsed_samples():
    centres = toy.ring_centres(8, 2.0)
    real = toy.ring_of_gaussians(4000, std=0.05, generator=torch.Generator().manual_seed(0))
    report = toy.mode_report(real, centres, std=0.05)
    assert report["modes_covered"] == 8 and report["modes_nearest"] == 8
    assert report["high_quality_share"] > 0.99  # 3 std in 2-D: 98.9% expected, seeded draw
    collapsed = centres[2] + 0.05 * torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
    assert toy.modes_covered(collapsed, centres, 0.05) == 1
    assert toy.mode_report(collapsed, centres, 0.05)["modes_nearest"] == 1
    far = torch.zeros(100, 2)  # all at the centre of the ring: nowhere near a mode
    assert toy.high_quality_share(far, centres, 0.05) == 0


def test_mode_report_counts_by_hand():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.tensor([[0.0, 0.05], [0.1, 0.0], [10.0, 0.0], [9.0, 0.0], [5.0, 5.0]])
    report = toy.mode_report(samples, centres, std=0.1, threshold=3.0, min_share=0.2)
    # high quality: the first three (within 0.3 of a centre); mode 0 has two (40%), mode 1 one (20%)
    assert report["counts"] == [2, 1, 0] and report["high_quality_share"] == pytest.approx(0.6)
    assert report["modes_covered"] == 2
    assert report["effective_modes"] == pytest.approx(math.exp(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))))
    assert toy.effective_number(torch.tensor([5, 5, 5, 5])) == pytest.approx(4.0)
    assert toy.effective_number(torch.tensor([0, 7, 0])) == pytest.approx(1.0)
    assert toy.effective_number(torch.zeros(3)) == 0.0
    # nearest centres: 0, 0, 1, 1, and (5, 5), equally far from all three, goes to the first: 0
    assert report["modes_nearest"] == 2
    with pytest.raises(ValueError, match="must agree"):
        toy.mode_report(torch.zeros(3, 3), centres, 0.1)
