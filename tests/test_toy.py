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


@pytest.fixture
def one_thread():
    """One thread, as notebook 02 trains the toy GANs; the thread count is put back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _single_toy_run(seed, steps, lr_g, lr_d, pack=1):
    """The plain loop that train_toy_gans runs side by side (notebook 02's train_toy)."""
    from course_utils import gan
    from course_utils.runtime import seed_everything

    rng = seed_everything(seed)
    G, D = gan.ToyGenerator(), gan.ToyDiscriminator(pack=pack)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(0.5, 0.999))
    for _ in range(steps):
        gan.gan_step(G, D, opt_g, opt_d, toy.ring_of_gaussians(128, std=0.05, generator=rng), real_label=1.0)
    return G, D


@pytest.mark.parametrize("pack", [1, 2])
def test_train_toy_gans_is_the_single_runs_side_by_side(pack, one_thread):
    out = toy.train_toy_gans([4, 1], lr_g=1e-4, lr_d=1e-2, steps=25, pack=pack, snapshot_at=(10, 25))
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    for k, seed in enumerate([4, 1]):
        G, D = _single_toy_run(seed, 25, 1e-4, 1e-2, pack)
        with torch.no_grad():
            assert torch.allclose(G(z), out["samples"][k], atol=1e-5)
            assert torch.allclose(out["generators"][k](z), out["samples"][k], atol=1e-6)
            assert torch.allclose(out["snapshots"][25]["samples"][k], out["samples"][k])
            x = out["samples"][k][:64]
            assert torch.allclose(D(x), out["snapshots"][25]["discriminators"][k](x), atol=1e-5)
    assert set(out["snapshots"]) == {10, 25} and out["samples"].shape == (2, 2000, 2)
    assert not torch.allclose(out["snapshots"][10]["samples"], out["samples"])  # it trained between the two


@pytest.mark.parametrize("pack, r1", [(1, 0.0), (2, 0.0), (1, 1.0)])
def test_train_toy_gans_threads_change_nothing(pack, r1, one_thread):
    """Notebook 02 splits its seeds over Python threads: every number, bit for bit, as on one thread."""
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(7))

    def numbers(threads):
        out = toy.train_toy_gans([3, 0, 5, 1, 4, 2], lr_g=1e-3, lr_d=1e-2, steps=12, pack=pack, r1=r1,
                                 snapshot_at=(5, 12), threads=threads)
        x = out["samples"][0][:64]
        with torch.no_grad():
            snaps = [s["samples"] for s in out["snapshots"].values()]
            judged = [torch.stack([d(x) for d in s["discriminators"]]) for s in out["snapshots"].values()]
            return [out["samples"], *snaps, *judged, torch.stack([g(z) for g in out["generators"]]),
                    torch.get_rng_state()]  # torch's global generator ends where it did, too

    one = numbers(1)
    for threads in (2, 3, 16):  # groups of 3 + 3, of 2 + 2 + 2, and never fewer than two seeds in a group
        assert all(torch.equal(a, b) for a, b in zip(one, numbers(threads), strict=True)), threads
    assert [list(g) for g in toy._groups(6, 2)] == [[0, 1, 2], [3, 4, 5]]
    assert [len(g) for g in toy._groups(5, 8)] == [2, 3] and len(toy._groups(3, 4)) == 1
    with pytest.raises(ValueError, match="threads"):
        toy.train_toy_gans([0, 1], 1e-3, 1e-3, 5, threads=0)


def test_train_toy_gans_r1_penalty_and_errors(one_thread):
    plain = toy.train_toy_gans([0], lr_g=1e-3, lr_d=1e-2, steps=15)["samples"]
    penalised = toy.train_toy_gans([0], lr_g=1e-3, lr_d=1e-2, steps=15, r1=10.0)["samples"]
    again = toy.train_toy_gans([0], lr_g=1e-3, lr_d=1e-2, steps=15, r1=10.0)["samples"]
    assert torch.equal(penalised, again)  # seeded
    assert (plain - penalised).abs().max() > 1e-3  # the penalty changes D, hence G
    with pytest.raises(ValueError, match="multiple of pack"):
        toy.train_toy_gans([0], 1e-3, 1e-3, 5, pack=3)
    with pytest.raises(ValueError, match="at least one seed"):
        toy.train_toy_gans([], 1e-3, 1e-3, 5)


def _verdict(r):
    """Notebook 02's verdict (cell nb02-s2-07), on one seed's mode report."""
    sharp = r["high_quality_share"] >= 0.5
    if sharp and r["modes_covered"] >= 7 and r["effective_modes"] >= 7:
        return "healthy"
    if sharp and (r["modes_covered"] <= 4 or r["effective_modes"] <= 5):
        return "collapsed"
    return "not converged" if r["high_quality_share"] < 0.2 else "in between"


SEEDS = list(range(5))  # notebook 02's TOY_SEEDS (cell nb02-003)


@pytest.mark.slow
@pytest.mark.parametrize("name, lr_d, pack, steps, healthy", [
    ("equal rates, both 1e-4", 1e-4, 1, 2000, False),  # D slowed to G's rate: not enough in 2,000 steps
    ("equal rates, both 1e-4", 1e-4, 1, 8000, True),   # ... but with four times the steps
    ("PacGAN pack=2, D 100x", 1e-2, 2, 8000, False),   # the collapse setting, packed: still not cured
])  # (the collapse setting without packs, 8,000 steps, seeds 0 to 5: 0/6 healthy, 5 collapsed; left out for time)
def test_toy_control_for_notebook_02(name, lr_d, pack, steps, healthy, one_thread):
    """Notebook 02's control for section 2.4 (cells nb02-s2-26, f02a0003): its TOY_SEEDS, G at 1e-4, std 0.05.

    Figures on 2026-12-06, seeds 0 to 4 (healthy seeds, the others): 2,000 steps equal 0/5 (3 not converged,
    2 in between); 8,000 equal 5/5; PacGAN 0/5 (2 collapsed, 3 in between).
    """
    run = toy.train_toy_gans(SEEDS, lr_g=1e-4, lr_d=lr_d, steps=steps, pack=pack, std=0.05, threads=2)
    centres = toy.ring_centres(8, 2.0)
    verdicts = [_verdict(toy.mode_report(s, centres, 0.05)) for s in run["samples"]]
    print(name, steps, verdicts)
    most = math.ceil(0.75 * len(SEEDS))  # the notebook's "most seeds": at least 4 of 5
    if healthy:
        assert verdicts.count("healthy") >= most, verdicts
    else:
        assert verdicts.count("healthy") <= 1, verdicts  # healthy in at most one seed of five
