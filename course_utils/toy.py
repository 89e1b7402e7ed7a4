"""2-D toy data sets, small enough to see a whole distribution at once, and the mode counts.

Used in notebook 01 (fitting a Gaussian mixture) and notebook 02 (the toy GAN
and mode collapse, section 2: :func:`mode_report`, and :func:`train_toy_gans`,
which trains one toy GAN per seed side by side). Every sampler takes a
``torch.Generator`` so a notebook's data are the same on every run.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import gan
from course_utils.runtime import seed_everything


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
    are high-quality samples of that mode (the measures of the VEEGAN and PacGAN
    papers, Srivastava et al. 2017 and Lin et al. 2018, with a share instead of a
    fixed count). ``modes_nearest``
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


# --- many seeds of the toy GAN at once (notebook 02, section 2) ----------------------------


def _stack(models: list[nn.Module]) -> list[torch.Tensor]:
    """The weights ``[K, in, out]`` and biases ``[K, 1, out]`` of K equal MLPs, layer by layer, as new leaves."""
    layers = [[m for m in model.net if isinstance(m, nn.Linear)] for model in models]
    return [t.contiguous().requires_grad_(True) for i in range(len(layers[0])) for t in (
        torch.stack([ls[i].weight.detach().T for ls in layers]),
        torch.stack([ls[i].bias.detach()[None] for ls in layers]))]


def _run_stacked(model: nn.Module, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``model.net`` on ``x`` ``[K, N, in]``, member k's weights on ``x[k]``: one batched product per layer."""
    i = 0
    for layer in model.net:
        if isinstance(layer, nn.Linear):
            x = torch.baddbmm(params[i + 1], x, params[i])
            i += 2
        else:  # the activations act on each number alone
            x = layer(x)
    return x


def _unstack(params: list[torch.Tensor], models: list[nn.Module]) -> list[nn.Module]:
    """Copy member k's weights back into ``models[k]``, for every k."""
    for j, model in enumerate(models):
        layers = [m for m in model.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for i, layer in enumerate(layers):
                layer.weight.copy_(params[2 * i][j].T)
                layer.bias.copy_(params[2 * i + 1][j, 0])
    return models


def _bce_per_member(logits: torch.Tensor, target: float) -> torch.Tensor:
    """``BCEWithLogitsLoss`` of each member's batch: ``[K, N, 1]`` logits -> ``[K]`` means."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none").mean((1, 2))


def _train_group(
    Gs: list[nn.Module], Ds: list[nn.Module], data_rngs: list[torch.Generator], noise_rngs: list[torch.Generator],
    fixed: torch.Tensor, lr_g: float, lr_d: float, steps: int, pack: int, r1: float, batch: int, std: float,
    snapshot_at: tuple[int, ...],
) -> dict:
    """The loop of :func:`train_toy_gans` for one group of members, stacked; its weights and samples over training."""
    pg, pd = _stack(Gs), _stack(Ds)
    K, G0, D0 = len(Gs), Gs[0], Ds[0]
    fixed = fixed.expand(K, -1, -1)
    G = lambda z: _run_stacked(G0, pg, z)  # noqa: E731
    D = lambda x: _run_stacked(D0, pd, x.reshape(K, -1, x.shape[2] * pack))  # noqa: E731  (PacGAN's packing)
    # foreach: Adam's arithmetic, tensor by tensor as without it, in fewer calls from Python
    opt_g = torch.optim.Adam(pg, lr=lr_g, betas=(0.5, 0.999), foreach=True)
    opt_d = torch.optim.Adam(pd, lr=lr_d, betas=(0.5, 0.999), foreach=True)
    centres, snapshots = ring_centres(), {}
    for step in range(1, steps + 1):
        # ring_of_gaussians(batch, std=std, generator=r) for each member: the same draws, then one sum for all
        which = torch.stack([torch.randint(len(centres), (batch,), generator=r) for r in data_rngs])
        real = centres[which] + std * torch.stack([torch.randn(batch, 2, generator=r) for r in data_rngs])
        fake = G(torch.stack([torch.randn(batch, G0.config.z_dim, generator=r) for r in noise_rngs]))
        real.requires_grad_(r1 > 0)
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = _bce_per_member(d_real, 1.0) + _bce_per_member(d_fake, 0.0)
        if r1 > 0:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            loss_d = loss_d + r1 / 2 * grad.square().sum(2).mean(1)
        opt_d.zero_grad(set_to_none=True)
        loss_d.sum().backward()  # member k's weights get the gradient of member k's loss only
        opt_d.step()
        loss_g = _bce_per_member(D(fake), 1.0)  # non-saturating
        opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward(inputs=pg)  # G's gradients only: D's would be thrown away unused
        opt_g.step()
        if step in snapshot_at:
            with torch.no_grad():
                snapshots[step] = {"samples": G(fixed).clone(), "pd": [p.detach().clone() for p in pd]}
    with torch.no_grad():
        return {"pg": [p.detach() for p in pg], "samples": G(fixed).clone(), "snapshots": snapshots}


def _groups(members: int, threads: int) -> list[range]:
    """Split ``members`` into at most ``threads`` consecutive groups of at least 2 (one group if fewer than 4)."""
    n = max(1, min(threads, members // 2))
    cuts = [round(i * members / n) for i in range(n + 1)]
    return [range(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def train_toy_gans(
    seeds: list[int], lr_g: float, lr_d: float, steps: int, *, pack: int = 1, r1: float = 0.0, batch: int = 128,
    std: float = 0.05, snapshot_at: tuple[int, ...] = (), samples: int = 2000, noise_seed: int = 1,
    threads: int = 1,
) -> dict:
    """One toy GAN per seed on :func:`ring_of_gaussians`, all trained side by side; their samples over training.

    Member k is the run that ``seed_everything(seeds[k])``, a fresh ``gan.ToyGenerator`` and
    ``gan.ToyDiscriminator(pack=pack)``, Adam (betas 0.5, 0.999) and ``steps`` calls of ``gan.gan_step``
    (``real_label=1``) on ``ring_of_gaussians(batch, std=std, generator=rng)`` would make: the same
    initial weights, data and noise. The K runs share nothing but the batched matrix products, which
    add in another order than one run's, so a member agrees with the single run to float rounding for
    a few steps and then, as GAN training amplifies such differences, becomes another draw of the same
    experiment. ``r1`` > 0 adds the R1 penalty ``r1 / 2 * E_real |grad_x D(x)|^2`` to D's loss
    (Mescheder et al. 2018). Returns ``generators`` (plain ``ToyGenerator`` modules),
    ``samples`` (``[K, samples, 2]`` from the same fixed noise, ``noise_seed``) and ``snapshots``:
    for each step in ``snapshot_at``, the samples then and the discriminators (``ToyDiscriminator``).

    ``threads`` > 1 splits the members into up to that many groups of at least two, each stacked and
    trained on its own Python thread at the same time (torch releases the GIL inside its operations, so
    two cores train two groups). A member's numbers do not depend on how many others share its stack
    (two or more), so every member comes out bit for bit as with ``threads=1``, and torch's global
    random generator ends in the same state; the intra-op thread count is the caller's to set (1 suits
    these tiny networks).
    """
    if batch % pack:
        raise ValueError(f"batch {batch} is not a multiple of pack={pack}")
    if not seeds or steps < 1:
        raise ValueError(f"need at least one seed and one step, got {len(seeds)} seeds and {steps} steps")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    Gs, Ds, data_rngs, noise_rngs = [], [], [], []
    for seed in seeds:
        data_rngs.append(seed_everything(seed))
        Gs.append(gan.ToyGenerator())
        Ds.append(gan.ToyDiscriminator(pack=pack))
        noise_rngs.append(torch.Generator())
        noise_rngs[-1].set_state(torch.get_rng_state())  # gan_step draws z from torch's global generator
    fixed = torch.randn(samples, Gs[0].config.z_dim, generator=torch.Generator().manual_seed(noise_seed))
    settings = (fixed, lr_g, lr_d, steps, pack, r1, batch, std, tuple(snapshot_at))
    jobs = [([Gs[i] for i in g], [Ds[i] for i in g], [data_rngs[i] for i in g], [noise_rngs[i] for i in g])
            for g in _groups(len(seeds), threads)]
    if len(jobs) == 1:
        runs = [_train_group(*jobs[0], *settings)]
    else:
        with ThreadPoolExecutor(len(jobs)) as pool:
            runs = list(pool.map(lambda job: _train_group(*job, *settings), jobs))

    def cat_each(parts: list[list[torch.Tensor]]) -> list[torch.Tensor]:  # the groups' members, back in seed order
        return [torch.cat(ts) for ts in zip(*parts, strict=True)]

    snapshots = {}
    for step in sorted(runs[0]["snapshots"]):  # D modules made here, in step order: the global generator as before
        snaps = [run["snapshots"][step] for run in runs]
        snapshots[step] = {"samples": torch.cat([s["samples"] for s in snaps]), "discriminators": _unstack(
            cat_each([s["pd"] for s in snaps]), [gan.ToyDiscriminator(pack=pack) for _ in seeds])}
    generators = _unstack(cat_each([run["pg"] for run in runs]), Gs)
    return {"generators": generators, "samples": torch.cat([run["samples"] for run in runs]), "snapshots": snapshots}
