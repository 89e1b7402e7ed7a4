"""The exercise checkers of notebook 02 (GANs)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import evaluation, gan, toy
from course_utils.exercises import Wrong, as_number, call, checker, close, refusing

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
    from scipy.spatial.distance import jensenshannon  # imported here: half a second, for this one checker only

    return float(jensenshannon((p * dx).numpy(), (q * dx).numpy())) ** 2  # scipy returns its square root


_GAPS = (0.5, 4.0)  # the gaps between the two boxes of the disjoint case


def _disjoint_value(value_fn: Callable[..., Any], gap: float) -> float:
    """The learner's V for two boxes of width 1 that are ``gap`` apart: 0 when 0 log 0 counts as 0."""
    x, _, _, dx = _grid_densities()

    def box(a: float) -> torch.Tensor:  # a density of width 1 from a, zero elsewhere
        inside = ((x >= a) & (x < a + 1.0)).double()
        return inside / float(inside.sum() * dx)

    raw = call(value_fn, "your function", box(-1.0 - gap), box(0.0), dx)
    if isinstance(raw, torch.Tensor) and raw.numel() == 1:
        raw = raw.item()
    v = raw if isinstance(raw, float) and not math.isfinite(raw) else as_number(raw, "V for disjoint densities")
    if not math.isfinite(v):  # nan or inf: as_number would only say "not finite"; name the cause
        raise Wrong(f"for two densities that are 0 on parts of the grid (boxes {gap:g} apart) you return {v}. Where "
                    "p_data = 0 the term p_data log D* is 0 (the limit of p log p is 0: torch.xlogy(p, d) gives it), "
                    "even though D* = 0 there; the same for p_g; and where both densities are 0 there is no mass at "
                    "all (D* = 0/0 is nan there: leave those points out)")
    if not close(v, 0.0, 1e-3):
        raise Wrong(f"for two densities that do not overlap ({gap:g} apart) you return {v:.4f}; there D* is 1 on the "
                    "data and 0 on the generator's samples, so both expectations, and V, are 0 (JSD = log 2)")
    return v


_SCIPY_SHORTCUTS = (("scipy.spatial.distance", "jensenshannon"), ("scipy.special", "rel_entr"),
                    ("scipy.special", "kl_div"), ("scipy.special", "entr"))  # each computes the JSD or a term of it
_BY_HAND = ("SciPy's divergence functions (jensenshannon, rel_entr, kl_div, entr), which compute the JSD or its "
            "terms for you: write V yourself from D* = p_data / (p_data + p_g) with torch (torch.xlogy gives the "
            "p log D terms, 0 where p = 0)")


def _scipy_targets() -> list[tuple[Any, str, str]]:
    from scipy import special  # SciPy only when this checker runs (as in _jsd)
    from scipy.spatial import distance

    modules = {"scipy.spatial.distance": distance, "scipy.special": special}
    return [(modules[module], name, f"{module}.{name}") for module, name in _SCIPY_SHORTCUTS]


@checker(solution="gan_value")
def check_gan_value(value_fn: Callable[..., Any]) -> str:
    """``value_fn(p_data, p_g, dx)``: V(D*, G) for densities on a grid, with the optimal discriminator.

    By hand: a function that names one of SciPy's divergence functions (or an alias of one) is refused
    before it runs, and one that calls one through its module while the checker runs it, after.
    """
    targets = _scipy_targets()
    names, namespace = _names_used(value_fn), getattr(value_fn, "__globals__", {})
    referred = [value_fn, *(namespace.get(n) for n in names)]  # the function, the globals it names...
    for cell in getattr(value_fn, "__closure__", None) or ():  # ...and the variables it closes over
        with contextlib.suppress(ValueError):  # an empty cell
            referred.append(cell.cell_contents)
    shortcuts = [getattr(owner, name) for owner, name, _ in targets]
    if names & {name for _, name in _SCIPY_SHORTCUTS} or any(r is f for r in referred for f in shortcuts):
        raise Wrong(f"your function uses {_BY_HAND}")
    _, p_data, p_g, dx = _grid_densities()
    expected = -math.log(4) + 2 * _jsd(p_data, p_g, dx)  # before SciPy's functions are refused
    used: list[str] = []
    try:
        with refusing(targets, used):
            message = _check_gan_value(value_fn, p_data, p_g, dx, expected)
    except Wrong:
        if not used:
            raise
    if used:
        raise Wrong(f"your function calls {used[0]}: {_BY_HAND}")
    return message


def _check_gan_value(value_fn: Callable[..., Any], p_data: torch.Tensor, p_g: torch.Tensor, dx: float,
                     expected: float) -> str:
    v = as_number(call(value_fn, "your function", p_data.clone(), p_g.clone(), dx), "V(D*, G)")
    if close(v, expected, 1e-3):
        same = as_number(call(value_fn, "your function", p_data.clone(), p_data.clone(), dx), "V for p_g = p_data")
        if not close(same, -math.log(4), 1e-3):
            raise Wrong(f"for p_g = p_data you return {same:.4f}; the value there is -log 4 = {-math.log(4):.4f}")
        apart = [_disjoint_value(value_fn, gap) for gap in _GAPS]
        return (f"V(D*, G) = {v:.4f}, which matches -log 4 + 2 JSD (SciPy's JSD); for two densities "
                f"that do not overlap, {_GAPS[0]:g} and {_GAPS[1]:g} apart: {apart[0]:.4f} and {apart[1]:.4f}. Once "
                "the supports are disjoint, V (and the JSD, log 2) no longer depends on how far apart they are")
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
    same = as_number(call(value_fn, "your function", p_data.clone(), p_data.clone(), dx), "V for p_g = p_data")
    if not close(same, -math.log(4), 1e-3):
        raise Wrong(f"expected {expected:.4f}, got {v:.4f}. Try the case you can do by hand first: for p_g = p_data, "
                    f"D* = 1/2 everywhere and V = -log 4 = {-math.log(4):.4f}; yours gives {same:.4f}")
    raise Wrong(f"expected {expected:.4f}, got {v:.4f}; for p_g = p_data you do get -log 4, so look at how D* "
                "depends on the two densities. Stuck? show_solution(\"gan_value\")")


# --- the minimax generator step (section 2) ----------------------------------------------------------------

_BATCH = 64
_LR = 0.05  # plain SGD: its step is proportional to the gradient, so a wrong scale or sign shows in G's weights
_STALE = 0.5  # every .grad of G holds this before the step: a step that forgets zero_grad() adds it in


def _check_update(after: list[torch.Tensor], right: list[torch.Tensor], who: str) -> None:
    """The hints once the loss is right: the stale gradient of a forgotten zero_grad(), or any other wrong update."""
    opt = f"opt_{who.lower()}"
    if _same(after, [r - _LR * _STALE for r in right]):
        raise Wrong(f"call {opt}.zero_grad() before loss.backward(): {who}'s .grad still held gradients from an "
                    "earlier step, and backward() adds to them")
    if not _same(after, right):
        raise Wrong(f"the loss is right but {who}'s update is not: {opt}.zero_grad(), loss.backward(), then one "
                    f"{opt}.step()")


def _toy(d_bias: float) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """A small toy G and D, seeded; ``d_bias`` is added to every logit of D (-10: D rejects the fakes; +30: fooled)."""
    with torch.random.fork_rng(devices=[]):  # seeded, and the notebook's random state is left alone
        torch.manual_seed(0)
        G, D = gan.ToyGenerator(), gan.ToyDiscriminator()
    with torch.no_grad():
        D.net[-1].bias.add_(d_bias)
    return G, D, torch.randn(_BATCH, G.config.z_dim, generator=torch.Generator().manual_seed(1))


def _forbidden(used: list[str], module: Any, *names: str) -> contextlib.AbstractContextManager[list[str]]:
    """While inside, ``module.name`` raises for each name it has, and notes the name in ``used``."""
    return refusing([(module, name, name) for name in names if hasattr(module, name)], used)


_BCE = "binary_cross_entropy_with_logits", "binary_cross_entropy"  # what BCEWithLogitsLoss and BCELoss call


def _reference_step(G: nn.Module, D: nn.Module, opt: torch.optim.Optimizer, z: torch.Tensor,
                    non_saturating: bool = False) -> float:
    logits = D(G(z))
    loss = F.softplus(-logits).mean() if non_saturating else -F.softplus(logits).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


@dataclass
class _Step:
    out: Any  # what the step returned
    before: list[torch.Tensor]  # G's weights before the step
    after: list[torch.Tensor]  # G's weights after it
    d_after: list[torch.Tensor]  # D's weights after it
    reached_g: bool  # did G hold a nonzero gradient after the step?


def _g_step(step_fn: Callable[..., Any] | None, d_bias: float, non_saturating: bool = False) -> _Step:
    """One G step from fresh networks, by ``step_fn`` (None: the checker's own reference)."""
    G, D, z = _toy(d_bias)
    before = [p.detach().clone() for p in G.parameters()]
    opt = torch.optim.SGD(G.parameters(), lr=_LR)
    for p in G.parameters():
        p.grad = torch.full_like(p, _STALE)
    if step_fn is None:
        out = _reference_step(G, D, opt, z, non_saturating)
    else:
        used: list[str] = []
        try:
            with _forbidden(used, F, *_BCE), _forbidden(used, torch, *_BCE):
                out = call(step_fn, "your minimax_g_step", G, D, opt, z)
        except Wrong as wrong:
            if used:
                raise Wrong("write the loss from D's logits yourself, without a BCE helper (BCEWithLogitsLoss, "
                            "BCELoss, F.binary_cross_entropy_with_logits): with D = sigmoid(logit), the loss is "
                            "the batch mean of log(1 - sigmoid(logit))") from None
            if "does not require grad" in str(wrong):
                raise Wrong("no gradient reached G: compute the loss from D(G(z)) without .detach() or "
                            "torch.no_grad(), so that backward() runs through D into G") from None
            raise
    return _Step(out, before, [p.detach() for p in G.parameters()], [p.detach() for p in D.parameters()],
                 any(p.grad is not None and bool(p.grad.any()) for p in G.parameters()))


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, rtol=1e-4, atol=1e-6) for x, y in zip(a, b, strict=True))


def _distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float((x - y).square().sum()) for x, y in zip(a, b, strict=True)))


@checker(solution="minimax_g_step")
def check_minimax_g_step(step_fn: Callable[..., Any]) -> str:
    """``step_fn(G, D, opt_g, z)``: one update of G with the minimax loss mean log(1 - D(G(z))), which it returns."""
    mine, ref = _g_step(step_fn, 0.0), _g_step(None, 0.0)
    loss, ref_loss, ns_loss = as_number(mine.out, "the loss you return"), ref.out, _g_step(None, 0.0, True).out
    before, after, right = mine.before, mine.after, ref.after
    if not _same(mine.d_after, ref.d_after):
        raise Wrong("D's weights changed: this step updates G only (step opt_g, not D)")
    flipped = [2 * b - r for b, r in zip(before, right, strict=True)]  # the SGD step with the gradient's sign reversed
    if close(loss, -ref_loss) or _same(after, flipped):
        raise Wrong("the sign is flipped: G minimises log(1 - D(G(z))), a negative number that falls as D is fooled; "
                    "minimising -log(1 - D(G(z))) = BCE(D(G(z)), 0) would make the fakes look more fake")
    if close(loss, ns_loss):
        raise Wrong("that is the non-saturating loss -log D(G(z)) of train_step; the minimax generator minimises "
                    "log(1 - D(G(z))), with the logit l: log(1 - sigmoid(l)), not -log sigmoid(l)")
    if close(loss, _BATCH * ref_loss):
        raise Wrong("wrong reduction: you summed over the batch; the loss is an expectation over z, so take the mean")
    if not close(loss, ref_loss):
        raise Wrong(f"expected a loss of {ref_loss:.4f}, the batch mean of log(1 - D(G(z))); yours is {loss:.4f}")
    if _same(after, before):
        if not mine.reached_g:
            raise Wrong("the loss is right but no gradient reached G: don't detach G(z) (nor compute it under "
                        "torch.no_grad()), so that loss.backward() runs through D into G")
        raise Wrong("the loss is right but G did not move: after loss.backward(), call opt_g.step()")
    _check_update(after, right, "G")
    return _saturation(step_fn, _g_step(step_fn, 30.0).out)


def _saturation(step_fn: Callable[..., Any], fooled: Any) -> str:
    """The two extremes: D fooled (the loss must stay finite) and D rejecting the fakes (the gradient vanishes)."""
    if isinstance(fooled, torch.Tensor) and fooled.numel() == 1:
        fooled = fooled.item()
    if isinstance(fooled, float) and not math.isfinite(fooled):
        raise Wrong(f"when D is fooled (logits near +30) your loss is {fooled}: 1 - sigmoid(l) rounds to 0 in float32. "
                    "Rewrite log(1 - sigmoid(l)) so that 1 - sigmoid(l) is never computed: 1 - sigmoid(l) = "
                    "sigmoid(-l), and section 1 wrote log sigmoid in a form exact for any logit")
    as_number(fooled, "the loss you return when D is fooled")
    mine, ref, ns = _g_step(step_fn, -10.0), _g_step(None, -10.0), _g_step(None, -10.0, non_saturating=True)
    if not _same(mine.after, ref.after):
        raise Wrong("right for an undecided D, but not when D rejects the fakes (logits near -10): compute "
                    "log(1 - D(G(z))) from the logits in a form that is exact for every logit, with no clamping")
    moved, ns_moved = _distance(mine.after, mine.before), _distance(ns.after, ns.before)  # SGD: lr x gradient size
    G, D, z = _toy(-10.0)
    with torch.no_grad():
        verdict = float(torch.sigmoid(D(G(z))).mean())
    return (f"when D rejects the fakes (mean D(G(z)) = {verdict:.0e}) your minimax step moves G's weights by "
            f"{moved:.1e}, the non-saturating step by {ns_moved:.1e}: the minimax loss saturates, as section 1 showed")


# --- the discriminator's step (section 2) -------------------------------------------------------------------

_SMOOTH = 0.9  # the real label of one-sided smoothing, as in the notebook's DCGAN


def _d_setup() -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    """Small seeded toy networks, a real batch and the noise that ``gan.gan_step`` draws after ``manual_seed(0)``."""
    with torch.random.fork_rng(devices=[]):  # seeded, and the notebook's random state is left alone
        torch.manual_seed(0)
        G, D = gan.ToyGenerator(), gan.ToyDiscriminator()
        real = toy.ring_of_gaussians(_BATCH, std=0.05, generator=torch.Generator().manual_seed(1))
        torch.manual_seed(2)
        z = torch.randn(_BATCH, G.config.z_dim)
    return G, D, real, z


def _d_reference(real_label: float) -> tuple[float, list[torch.Tensor]]:
    """The package's whole step, ``gan.gan_step``, with plain SGD and ``_d_setup``'s noise: D's loss and weights."""
    G, D, real, _ = _d_setup()
    opts = [torch.optim.SGD(m.parameters(), lr=_LR) for m in (G, D)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        out = gan.gan_step(G, D, *opts, real, real_label=real_label)
    return out["loss_d"], [p.detach() for p in D.parameters()]


def _d_loss(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, real_target: float, fake_target: float) -> float:
    with torch.no_grad():
        r, f = D(real), D(fake)
        return float(F.binary_cross_entropy_with_logits(r, torch.full_like(r, real_target))
                     + F.binary_cross_entropy_with_logits(f, torch.full_like(f, fake_target)))


@checker(solution="d_step")
def check_d_step(step_fn: Callable[..., Any]) -> str:
    """``step_fn(G, D, opt_d, real, z, real_label)``: one update of D on a real and a fake batch; D's loss."""
    G, D, real, z = _d_setup()
    opt = torch.optim.SGD(D.parameters(), lr=_LR)
    for p in D.parameters():
        p.grad = torch.full_like(p, _STALE)  # a step that forgets zero_grad() adds this in
    used: list[str] = []
    try:
        with torch.random.fork_rng(devices=[]), _forbidden(used, gan, "discriminator_step", "gan_step"):
            out = call(step_fn, "your d_step", G, D, opt, real.clone(), z.clone(), _SMOOTH)
    except Wrong:
        if used:
            raise Wrong(f"your d_step calls gan.{used[0]}: write the step yourself (score both batches, the two "
                        "BCE losses, then zero_grad, backward and step)") from None
        raise
    loss = as_number(out, "the loss you return")
    after = [p.detach() for p in D.parameters()]
    ref_loss, right = _d_reference(_SMOOTH)
    G0, D0, _, _ = _d_setup()
    with torch.no_grad():
        fake = G0(z)
    if any(p.grad is not None and bool(p.grad.any()) for p in G.parameters()):
        raise Wrong("G received a gradient: detach the fakes (G(z).detach()) before D scores them, so that D's "
                    "update stays out of G (G gets its own step, with its own loss)")
    if not close(loss, ref_loss, 1e-4):
        wrong = {"the labels are swapped: real images are labelled real_label (0.9 here), the fakes 0":
                 _d_loss(D0, real, fake, 0.0, _SMOOTH),
                 "the smoothing is one-sided: only the real label becomes real_label; the fakes keep the label 0":
                 _d_loss(D0, real, fake, _SMOOTH, 1 - _SMOOTH),
                 "use real_label for the real batch: with label smoothing the real target is 0.9, not 1":
                 _d_loss(D0, real, fake, 1.0, 0.0),
                 "D's loss is the sum of the two BCE losses, the real batch's and the fake batch's, not their mean":
                 _d_loss(D0, real, fake, _SMOOTH, 0.0) / 2}
        for hint, value in wrong.items():
            if close(loss, value, 1e-4):
                raise Wrong(hint)
        raise Wrong(f"expected D's loss {ref_loss:.4f} (BCE on the real batch with target real_label, plus BCE on "
                    f"the detached fakes with target 0, from the logits); yours is {loss:.4f}")
    if _same(after, [p.detach() for p in D0.parameters()]):
        raise Wrong("the loss is right but D did not move: after loss.backward(), call opt_d.step()")
    _check_update(after, right, "D")
    return (f"D's loss {loss:.4f} and D's new weights match gan.gan_step's, with the label smoothing "
            f"(real label {_SMOOTH}) and the fakes detached. Compare yours with the reference: "
            'show_solution("d_step")')


# --- the Fréchet distance of diagonal Gaussians, from features (section 4) -----------------------------------


def _features() -> tuple[torch.Tensor, torch.Tensor]:
    """Two correlated feature sets of different sizes, [30, 6] and [50, 6], float32 as a network's features are."""
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(6, 6, generator=g) / 2 + torch.eye(6)
    a = torch.randn(30, 6, generator=g) @ mix
    b = (torch.randn(50, 6, generator=g) * torch.linspace(0.5, 2.0, 6)) @ mix + torch.linspace(-1.0, 1.0, 6)
    return a, b


def _diag_parts(a: torch.Tensor, b: torch.Tensor, unbiased: bool = True) -> tuple[torch.Tensor, ...]:
    a, b = a.double(), b.double()
    return a.mean(0), b.mean(0), a.var(0, unbiased=unbiased), b.var(0, unbiased=unbiased)


_EVALUATION = "frechet_distance", "feature_stats", "fid_fmnist", "_sqrt_psd"  # the full FID: not in this exercise


_NOTEBOOK_FD = {"frechet_by_hand", "sqrt_psd"}  # the notebook's own full Fréchet distance, in view below


def _names_used(fn: Any) -> set[str]:
    """The global names a function's code (and the code nested in it) refers to."""
    names: set[str] = set()
    stack = [getattr(fn, "__code__", None)]
    while stack:
        code = stack.pop()
        if code is not None:
            names |= set(code.co_names) | set(code.co_freevars)
            stack += [c for c in code.co_consts if hasattr(c, "co_names")]
    return names


@checker(solution="diagonal_fd")
def check_diagonal_fd(fd_fn: Callable[..., Any]) -> str:
    """``fd_fn(feats1, feats2)``: the squared Fréchet distance between diagonal Gaussians fitted to two feature sets."""
    a, b = _features()
    borrowed = _NOTEBOOK_FD & _names_used(fd_fn)
    if borrowed:
        raise Wrong(f"your function uses {sorted(borrowed)[0]} from the notebook's full Fréchet distance: work the "
                    "formula out for diagonal covariances and write it with torch alone")
    used: list[str] = []
    try:
        with _forbidden(used, evaluation, *_EVALUATION):
            got = as_number(call(fd_fn, "your diagonal_fd", a.clone(), b.clone()), "the distance")
    except Wrong as wrong:
        if used:
            raise Wrong(f"your function calls evaluation.{used[0]}: work the formula out for diagonal covariances "
                        "and write it with torch alone (a mean and a variance per feature)") from None
        if "must match the size" in str(wrong):
            raise Wrong(f"{wrong}. The statistics are per feature: average over the samples, dim 0 of the [N, d] "
                        "features (the two sets have different N)") from None
        raise
    m1, m2, v1, v2 = _diag_parts(a, b)
    mean_term = float((m1 - m2).square().sum())
    expected = mean_term + float((v1.sqrt() - v2.sqrt()).square().sum())
    if close(got, expected, 1e-4):
        same = as_number(call(fd_fn, "your diagonal_fd", a.clone(), a.clone()), "the distance of a set to itself")
        if abs(same) > 1e-6:
            raise Wrong(f"a set of features is at distance 0 from itself, yours gives {same:.2e}")
        full = evaluation.frechet_distance(*evaluation.feature_stats(a), *evaluation.feature_stats(b))
        return (f"{got:.4f}; the full Fréchet distance of the same features is {full:.4f}: the diagonal Gaussians "
                "ignore how the features vary together")
    if close(got, mean_term, 1e-4):
        raise Wrong("that is only the mean term: the covariance (trace) term is missing; work out what "
                    "tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) becomes when S1 and S2 are diagonal")
    if close(got, float((m1 - m2).norm()) + expected - mean_term, 1e-4):
        raise Wrong("square the distance between the means: ||mu1 - mu2||^2, the sum of squared differences")
    if close(got, mean_term + float((v1 - v2).square().sum()), 1e-4):
        raise Wrong("you compared variances: the trace term goes through matrix square roots, so for diagonal "
                    "covariances work it out again with each feature's variance inside a square root")
    if close(got, mean_term + float((v1 + v2 - 2 * v1 * v2).sum()), 1e-4):
        raise Wrong("the cross term 2 tr((S1^1/2 S2 S1^1/2)^1/2) goes through matrix square roots: on diagonal "
                    "matrices a matrix square root takes the square root of each entry, so work out what is left of "
                    "var1_i var2_i once both roots are taken")
    b1, b2, w1, w2 = _diag_parts(a, b, unbiased=False)
    if close(got, float((b1 - b2).square().sum() + (w1.sqrt() - w2.sqrt()).square().sum()), 1e-4):
        raise Wrong("use the unbiased variance, divided by N - 1 (the default of torch.var and torch.std, and what "
                    "torch.cov in evaluation.feature_stats computes), not by N")
    r, h = math.sqrt(0.5), math.sqrt(2.0)  # two samples per set: means (0, 0), (3, 0); variances (1, 4), (1, 1)
    by_hand = as_number(call(fd_fn, "your diagonal_fd", torch.tensor([[r, h], [-r, -h]]),
                             torch.tensor([[3 + r, r], [3 - r, -r]])), "the distance")
    raise Wrong(f"expected {expected:.4f}, got {got:.4f}. Check the case worked by hand in the notebook (means (0, 0) "
                f"and (3, 0), variances (1, 4) and (1, 1), two samples each: 10); yours gives {by_hand:.4f}. "
                "Stuck? show_solution(\"diagonal_fd\")")
