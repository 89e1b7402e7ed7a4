"""The exercise checkers of notebook 02 (GANs)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils import evaluation, gan
from course_utils.exercises import Wrong, as_number, call, checker, close

# --- the value of the game with the optimal discriminator (section 1) ------------------------------


def _grid_densities() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    x = torch.linspace(-8.0, 8.0, 4001, dtype=torch.float64)
    dx = float(x[1] - x[0])
    normal = torch.distributions.Normal
    p_data = 0.5 * normal(-2.0, 0.7).log_prob(x).exp() + 0.5 * normal(2.0, 0.7).log_prob(x).exp()
    p_g = normal(1.0, 1.5).log_prob(x).exp()
    return x, p_data, p_g, dx


def _jsd(p: torch.Tensor, q: torch.Tensor, dx: float) -> float:
    """The Jensen-Shannon divergence in nats, by scipy (an independent implementation)."""
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon((p * dx).numpy(), (q * dx).numpy())) ** 2  # scipy returns its square root


@checker
def check_gan_value(value_fn: Callable[..., Any]) -> str:
    """``value_fn(p_data, p_g, dx)``: V(D*, G) for densities on a grid, with the optimal discriminator."""
    _, p_data, p_g, dx = _grid_densities()
    v = as_number(call(value_fn, "your function", p_data.clone(), p_g.clone(), dx), "V(D*, G)")
    expected = -math.log(4) + 2 * _jsd(p_data, p_g, dx)
    if close(v, expected, 1e-3):
        same = as_number(call(value_fn, "your function", p_data.clone(), p_data.clone(), dx), "V for p_g = p_data")
        if not close(same, -math.log(4), 1e-3):
            raise Wrong(f"for p_g = p_data you return {same:.4f}; the value there is -log 4 = {-math.log(4):.4f}")
        return f"V(D*, G) = {v:.4f} = -log 4 + 2 JSD, computed with D* = p_data / (p_data + p_g)"
    if close(v, -expected, 1e-3):
        raise Wrong("the sign is flipped: V = E_data[log D*] + E_g[log(1 - D*)], a sum of logs of probabilities (<= 0)")
    d_star = p_data / (p_data + p_g)
    swapped = float(((p_data * torch.log(1 - d_star).clamp_min(-1e9)) + p_g * torch.log(d_star)).sum() * dx)
    if close(v, swapped, 1e-3):
        raise Wrong("the two terms are swapped: real data is scored with log D*(x), generated data with log(1 - D*(x))")
    no_dx = float((p_data * torch.log(d_star) + p_g * torch.log(1 - d_star)).sum())
    if close(v, no_dx, 1e-3):
        raise Wrong("multiply the sum by dx: the expectations are integrals over x, approximated on the grid")
    if close(v, -math.log(4), 1e-3):
        raise Wrong("you used D = 1/2 everywhere: that is the optimum only when p_g = p_data; use "
                    "D* = p_data / (p_data + p_g)")
    raise Wrong(f"expected {expected:.4f}: V = sum over the grid of (p_data log D* + p_g log(1 - D*)) dx, "
                "with D* = p_data / (p_data + p_g)")


# --- one training step (section 3) ------------------------------------------------------------------


def _step_fixture(seed: int = 0) -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    G = gan.Generator(z_dim=8, channels=8, num_classes=10)
    D = gan.Discriminator(channels=8, num_classes=10)
    real = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(seed + 1)) * 2 - 1
    return G, D, real, torch.arange(16) % 10


def _run(step_fn: Callable[..., Any] | None, real_label: float = 0.9) -> tuple[Any, nn.Module, nn.Module]:
    G, D, real, labels = _step_fixture()
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    torch.manual_seed(123)
    if step_fn is None:
        out = gan.gan_step(G, D, opt_g, opt_d, real, labels, real_label=real_label)
        out = (out["loss_d"], out["loss_g"])
    else:
        out = call(step_fn, "your train_step", G, D, opt_g, opt_d, real, labels)
    return out, G, D


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a.parameters(), b.parameters(), strict=True))


@checker
def check_train_step(step_fn: Callable[..., Any]) -> str:
    """``step_fn(G, D, opt_g, opt_d, real, labels)`` -> ``(loss_d, loss_g)``: one DCGAN update, as in section 3."""
    try:
        out, G, D = _run(step_fn)
    except Wrong as wrong:
        if "backward through the graph a second time" in str(wrong):
            raise Wrong("D's loss must use fake.detach(): without it, D's backward pass frees the graph through G "
                        "that G's loss needs next (and sends D's gradients into G)") from None
        raise
    if not isinstance(out, tuple) or len(out) != 2:
        raise Wrong("return the two losses as a tuple: (loss_d, loss_g), each a number (use .item())")
    loss_d, loss_g = as_number(out[0], "loss_d"), as_number(out[1], "loss_g")
    (ref_d, ref_g), G_ref, D_ref = _run(None)
    if close(loss_d, ref_d) and close(loss_g, ref_g) and _same_weights(D, D_ref) and _same_weights(G, G_ref):
        return "D learns from a real and a detached fake batch, then G from D's verdict on the same fakes"
    (plain_d, _), _, _ = _run(None, real_label=1.0)
    if close(loss_d, plain_d):
        raise Wrong("D's target for real images should be 0.9 (one-sided label smoothing), not 1")
    G0 = _step_fixture()[0]
    if _same_weights(G, G0):
        raise Wrong("G did not change: after D's update, compute G's loss on D(fake, labels) and step opt_g")
    if close(loss_d, ref_d) and _same_weights(D, D_ref) and not close(loss_g, ref_g):
        if close(loss_g, -ref_g) or loss_g < 0:
            raise Wrong("G's loss should be BCE(D(fake), 1) = -log D(G(z)), the non-saturating loss; "
                        "yours looks like the minimax log(1 - D(G(z))), which saturates")
        raise Wrong("D's update matches; G's loss does not: label the fakes 1 (real) for G, BCE with logits")
    if close(loss_d, ref_d) and not _same_weights(G, G_ref):
        raise Wrong("the losses match but G ended elsewhere: use fake.detach() for D's loss so D's update "
                    "sends no gradient into G, and zero G's gradients before G's backward pass")
    raise Wrong(f"your losses ({loss_d:.4f}, {loss_g:.4f}) differ from ({ref_d:.4f}, {ref_g:.4f}): draw z with "
                "torch.randn(len(real), G.config.z_dim) first, then D's step on real (target 0.9) and fake.detach() "
                "(target 0), then G's step with target 1")


# --- the Fréchet distance (section 4) ------------------------------------------------------------------


def _random_stats(d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return torch.randn(d, generator=g, dtype=torch.float64), a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


@checker
def check_frechet_distance(fd_fn: Callable[..., Any]) -> str:
    """``fd_fn(mu1, sigma1, mu2, sigma2)``: the squared Fréchet distance between two Gaussians."""
    (mu1, s1), (mu2, s2) = _random_stats(6, 0), _random_stats(6, 1)
    got = as_number(call(fd_fn, "your function", mu1.clone(), s1.clone(), mu2.clone(), s2.clone()), "the distance")
    expected = evaluation.frechet_distance(mu1, s1, mu2, s2)
    if close(got, expected, 1e-5):
        same = as_number(call(fd_fn, "your function", mu1, s1, mu1, s1), "the distance to itself")
        if abs(same) > 1e-5:
            raise Wrong(f"a Gaussian's distance to itself should be 0, yours is {same:.2e}")
        return f"{got:.4f}, the same as evaluation.frechet_distance"
    mean_term = float((mu1 - mu2).square().sum())
    if close(got, mean_term, 1e-5):
        raise Wrong("that is only the mean term: add tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)")
    traces = float(s1.trace() + s2.trace())
    root = evaluation._sqrt_psd(evaluation._sqrt_psd(s1) @ s2 @ evaluation._sqrt_psd(s1))
    if close(got, mean_term + traces - float(root.trace()), 1e-5):
        raise Wrong("the cross term counts twice: subtract 2 tr((S1^1/2 S2 S1^1/2)^1/2)")
    if close(got, mean_term + traces - 2 * float((s1 @ s2).trace()), 1e-5):
        raise Wrong("you subtracted 2 tr(S1 S2): the trace is of the matrix square root of S1 S2 "
                    "(use the symmetric S1^1/2 S2 S1^1/2 and torch.linalg.eigvalsh)")
    elementwise = float((s1 @ s2).clamp_min(0).sqrt().trace())
    if close(got, mean_term + traces - 2 * elementwise, 1e-5):
        raise Wrong("sqrt() of a matrix is element by element; the formula needs the matrix square root: "
                    "the square roots of the eigenvalues of S1^1/2 S2 S1^1/2")
    raise Wrong(f"expected {expected:.4f}: ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)")
