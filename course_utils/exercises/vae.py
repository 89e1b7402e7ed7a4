"""The exercise checkers of notebook 03 (VAEs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sklearn.metrics
import sklearn.metrics._ranking as sk_ranking
import torch
import torch.distributions.kl as torch_kl
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from course_utils import anomaly, vae
from course_utils.exercises import Wrong, as_number, as_tensor, call_refusing, checker, close

# --- the package's one-liners: an exercise that asks for a step refuses the functions that do it ----------------

SAMPLER_SHORTCUTS = ((vae, "reparameterize", "vae.reparameterize"),
                     (Normal, "rsample", "torch.distributions.Normal.rsample"))
ELBO_SHORTCUTS = ((vae, "vae_loss", "vae.vae_loss"), (vae, "bernoulli_nll", "vae.bernoulli_nll"),
                  (vae, "gaussian_kl", "vae.gaussian_kl"))
_SKLEARN_AUC = "scikit-learn's roc_auc_score"
AUROC_SHORTCUTS = tuple(  # the exercise says "without scikit-learn": its ROC functions, by every route
    (owner, attr, label) for owner, attr, label in (
        (anomaly, "auroc", "anomaly.auroc"), (anomaly, "roc_auc_score", _SKLEARN_AUC),
        (sklearn.metrics, "roc_auc_score", _SKLEARN_AUC), (sk_ranking, "roc_auc_score", _SKLEARN_AUC),
        (sk_ranking, "_binary_roc_auc_score", _SKLEARN_AUC),  # what a roc_auc_score imported before the check calls
        (sklearn.metrics, "roc_curve", "scikit-learn's roc_curve"),
        (sk_ranking, "roc_curve", "scikit-learn's roc_curve"),
        (sklearn.metrics, "auc", "scikit-learn's auc"), (sk_ranking, "auc", "scikit-learn's auc"),
        # under roc_curve, however it was imported (the name depends on scikit-learn's version)
        (sklearn.metrics, "confusion_matrix_at_thresholds", "scikit-learn's ROC curve"),
        (sk_ranking, "confusion_matrix_at_thresholds", "scikit-learn's ROC curve"),
        (sk_ranking, "_binary_clf_curve", "scikit-learn's ROC curve"),
    ) if hasattr(owner, attr)
)

# --- exercise 1: the reparameterised sampler ---------------------------------------------------------------

_MU = torch.tensor([-2.0, 0.0, 3.0])
_STD = torch.tensor([0.5, 1.0, 2.0])
_ROWS, _K = 2_000, 10  # 20,000 draws per column of z


@checker(solution="sample_z")
def check_reparameterize(reparameterize: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> str:
    """``sample_z(mu, logvar, k)``: k codes z ~ N(mu, exp(logvar)) per row, ``[N, k, d]``, differentiable in both."""
    mu = _MU.repeat(_ROWS, 1).requires_grad_(True)
    logvar = (2 * _STD.log()).repeat(_ROWS, 1).requires_grad_(True)
    torch.manual_seed(0)  # the answer may use torch.randn: seeded, the check is deterministic
    out = call_refusing(SAMPLER_SHORTCUTS, "write the trick yourself", reparameterize, "your function", mu, logvar, _K,
                        advice="draw eps of shape [N, k, d] with torch.randn and build z from mu, logvar and eps "
                               "(section 1.3)")
    z = as_tensor(out, "z", shape=(_ROWS, _K, len(_MU)))
    flat = z.flatten(0, 1)  # every code of every image: [N * k, d]
    # 20,000 draws per column: the sample mean is within 4 standard errors (4 * 2 / sqrt(20,000) = 0.057)
    # of the true mean, and the sample std within 2% of the true std, except with negligible probability.
    mean, std = flat.mean(0), flat.std(0)
    if std.max() < 1e-6:
        raise Wrong("every z equals mu: the noise eps of section 1.3 is missing (one standard normal draw per entry)")
    if (z[:, 1:] - z[:, :1]).abs().max() < 1e-6:
        raise Wrong("the k codes of each image are all the same: draw new noise for every code (eps of shape "
                    "[N, k, d]), not one eps per image repeated k times")
    if (z[1:] - z[:1]).abs().max() < 1e-6:
        raise Wrong("every image got the same noise (these test images all have the same mu and logvar): eps should "
                    "have shape [N, k, d], not [k, d]")
    if (mean - _MU).abs().max() > 0.06:
        if (mean.abs().max() < 0.06) and (std - _STD).abs().max() / 2 < 0.04:
            raise Wrong("the samples are centred on 0, not on mu: the mean is missing from z")
        raise Wrong(f"the column means of z are {_fmt(mean)}, but mu is {_fmt(_MU)}: z should be centred on mu")
    ratio = std / _STD
    if ((std - _STD**2).abs() / _STD**2).max() < 0.02:
        raise Wrong("the spread of z is the variance exp(logvar), not the standard deviation, "
                    "which is exp(0.5 * logvar)")
    if ((std - 2 * _STD.log()).abs()).max() < 0.03 or ((std - (2 * _STD.log()).abs()).abs()).max() < 0.03:
        raise Wrong("logvar is the log of the variance: the standard deviation is computed from it, not logvar itself")
    if ((ratio - 1).abs()).max() > 0.02:
        raise Wrong(f"the standard deviations of z are {_fmt(std)}, expected {_fmt(_STD)} "
                    "(the square roots of exp(logvar))")
    grads = torch.autograd.grad(out.sum(), [mu, logvar], allow_unused=True) if out.requires_grad else (None, None)
    g_mu, g_logvar = (torch.zeros_like(mu) if g is None else g for g in grads)
    if g_mu.abs().max() == 0 and g_logvar.abs().max() == 0:
        raise Wrong("no gradient reaches mu and logvar: Normal(...).sample() cuts the graph and torch.normal passes "
                    "zero gradients; draw the noise on its own and build z from it (section 1.3)")
    if not close(g_mu, torch.full_like(g_mu, _K), 1e-4):
        raise Wrong("dz/dmu should be 1 for every code (so the sum of an image's k codes has gradient k): z must use "
                    "mu itself (not detached, not rescaled)")
    if g_logvar.abs().max() == 0:
        raise Wrong("no gradient reaches logvar: compute std from logvar inside autograd (no .detach(), no .item())")
    eps = (z - mu.detach()[:, None]) / _STD  # the noise that was drawn: [N, k, d]
    if not close(g_logvar, 0.5 * _STD * eps.sum(1), 1e-3):
        raise Wrong("the gradient with respect to logvar is not 0.5 * std * eps (section 1.3): z should depend "
                    "on logvar only through the standard deviation")
    return ("z = mu[:, None] + exp(logvar / 2)[:, None] * eps, with eps of shape [N, k, d]: new noise for every code, "
            "and gradients reach mu and logvar")


def _fmt(t: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in t.tolist()) + "]"


# --- exercise 2: the negative ELBO ----------------------------------------------------------------------------


def _elbo_case() -> tuple[torch.Tensor, ...]:
    """A small seeded batch: images with a black border, decoder logits, and the encoder's mu and logvar."""
    g = torch.Generator().manual_seed(0)
    n, d = 6, 16
    x = torch.rand(n, 1, 28, 28, generator=g)
    x[:, :, :5] = 0.0  # a black background, as in Fashion-MNIST
    logits = 2 * torch.randn(n, 1, 28, 28, generator=g)
    mu = 2 * torch.randn(n, d, generator=g)  # a KL of tens of nats, so that every mistake in it shows
    logvar = 1.5 * torch.randn(n, d, generator=g)
    return x, logits, mu, logvar


def _elbo_mistakes(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> list:
    """(value, hint) of the usual wrong answers, in the order they are looked for."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1)  # [N, 784]
    kl_d = 0.5 * (mu**2 + logvar.exp() - 1 - logvar)  # [N, d]
    recon, kl = bce.sum(1), kl_d.sum(1)  # [N] each
    right = (recon + kl).mean()
    sigmoid_twice = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)
    swapped = F.binary_cross_entropy_with_logits(x, logits, reduction="none").flatten(1).sum(1)
    kl_std = 0.5 * (mu**2 + (0.5 * logvar).exp() - 1 - logvar).sum(1)
    return [
        ((recon + kl).sum(), "you summed over the batch as well: average the per-image values over the batch "
                             "(.mean()), so that the loss does not grow with the batch size"),
        (bce.mean() + kl.mean(), "the wrong reduction: the reconstruction term is averaged over the pixels (the "
                                 "default reduction='mean'). Sum it over the 784 pixels of each image, then average "
                                 "over the batch: averaging over pixels weights the KL 784 times more (section 1.5)"),
        (bce.mean() + kl_d.mean(), "you averaged over the pixels and over the latent dimensions: sum each term over "
                                   "its dimensions (one number per image), then average over the batch"),
        (recon.mean() + kl_d.mean(), "the KL is averaged over the latent dimensions: sum it over them (the KL of "
                                     "independent dimensions adds up), then average over the batch"),
        (recon.sum() + kl.mean(), "the reconstruction term is summed over the batch too (reduction='sum'): sum over "
                                  "the pixels of each image, then average over the batch like the KL"),
        (recon.mean() + kl.sum(), "the KL is summed over the batch too: one KL per image, then average over the batch"),
        (recon.mean(), "the KL term is missing: the negative ELBO is the reconstruction term plus "
                       "KL(q(z|x) || N(0, I))"),
        ((recon - kl).mean(), "the KL's sign: the ELBO subtracts the KL, so its negative adds it"),
        (-right, "this is the ELBO, the quantity to maximise: return its negative, the loss to minimise"),
        ((sigmoid_twice + kl).mean(), "binary_cross_entropy_with_logits applies the sigmoid itself: give it the "
                                      "logits, not torch.sigmoid(logits)"),
        ((swapped + kl).mean(), "the logits and the images are swapped: negative_elbo(logits, x, mu, logvar), like "
                                "F.binary_cross_entropy_with_logits, takes the logits first and the images second"),
        ((recon + 2 * kl).mean(), "your KL is twice the closed form: it has a factor 1/2 in front"),
        ((recon + kl + 0.5 * mu.shape[1]).mean(), "you left out the -1 in each latent dimension of the KL (without it "
                                                  "the KL of q = N(0, I) would be d / 2, not 0)"),
        ((recon + kl_std).mean(), "the KL needs the variance sigma^2 = exp(logvar), not the standard deviation "
                                  "exp(logvar / 2)"),
        ((recon + 0.5 * (mu**2 - 1).sum(1)).mean(), "logvar is log(sigma^2): the KL needs sigma^2 = exp(logvar) and "
                                                    "log(sigma^2) = logvar"),
    ]


@checker(solution="negative_elbo")
def check_negative_elbo(negative_elbo: Callable[..., Any]) -> str:
    """``negative_elbo(logits, x, mu, logvar)``: BCE over pixels + KL over dims, each summed, batch-averaged."""
    x, logits, mu, logvar = _elbo_case()
    inputs = [t.clone().requires_grad_(True) for t in (logits, mu, logvar)]
    try:
        out = call_refusing(ELBO_SHORTCUTS, "write the loss yourself", negative_elbo, "your function", inputs[0],
                            x.clone(), *inputs[1:], advice="write both terms of section 1.4 with torch operations "
                            "(F.binary_cross_entropy_with_logits for the reconstruction is fine)")
    except Wrong as wrong:
        if "between 0 and 1" in str(wrong):
            raise Wrong("F.binary_cross_entropy takes probabilities in [0, 1], but logits are any real numbers: use "
                        "the version of it that takes logits") from None
        raise
    with torch.no_grad():
        mistakes = _elbo_mistakes(x, logits, mu, logvar)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    n = len(x)
    if isinstance(out, torch.Tensor) and out.numel() > 1:
        if out.numel() == n and close(out.detach().double().flatten(), (recon + kl).double(), 1e-4):
            raise Wrong(f"these are the {n} per-image values: average them over the batch with .mean() (one number)")
        raise Wrong(f"return one number, the batch mean, not a tensor of shape {tuple(out.shape)}")
    value = as_number(out, "your negative ELBO")
    expected = (recon + kl).mean().item()
    if close(value, expected, 1e-4):
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise Wrong("the value is right, but a loss must stay a tensor in the graph so that .backward() works: "
                        "no .item(), float() or .detach()")
        grads = torch.autograd.grad(out, inputs, allow_unused=True)
        for name, grad in zip(("logits", "mu", "logvar"), grads, strict=True):
            if grad is None or grad.abs().max() == 0:
                raise Wrong(f"no gradient reaches {name}: compute the loss from {name} itself (no .detach())")
        return (f"-ELBO = {value:.2f} nats per image: reconstruction {recon.mean():.2f} + KL {kl.mean():.2f}, "
                "each summed over its dimensions, averaged over the batch")
    for wrong_value, hint in mistakes:
        if close(value, wrong_value.item(), 1e-4):
            raise Wrong(hint)
    raise Wrong(f"your negative ELBO is {value:.3f}, expected {expected:.3f} = reconstruction {recon.mean():.3f} "
                f"+ KL {kl.mean():.4f} (the batch means of the two terms)")


# --- exercise 3: the KL between two diagonal Gaussians --------------------------------------------------------


def _kl_case(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    shape = (6, 4)
    return (torch.randn(shape, generator=g), torch.randn(shape, generator=g),
            torch.randn(shape, generator=g), torch.randn(shape, generator=g))


def _kl(mu_q: torch.Tensor, lv_q: torch.Tensor, mu_p: torch.Tensor, lv_p: torch.Tensor) -> torch.Tensor:
    return kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp()))


_KL_SHORTCUT = "torch.distributions.kl_divergence"


def _call_kl(kl_fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> Any:
    """:func:`course_utils.exercises.call_refusing`, with torch's KL refused: the exercise asks for the formula."""
    targets = [(torch.distributions, "kl_divergence", _KL_SHORTCUT), (torch_kl, "kl_divergence", _KL_SHORTCUT),
               (torch_kl, "_dispatch_kl", _KL_SHORTCUT)]  # the last: a kl_divergence imported before the check
    torch_kl._KL_MEMOIZE.clear()  # torch's cache of looked-up KL functions: cleared, every call dispatches
    return call_refusing(targets, "write the KL yourself", kl_fn, "your function", *args,
                         advice="write the formula of section 1.4, generalised to a prior N(mu_p, var_p), with "
                                "torch operations")


@checker(solution="kl_diag_gaussians")
def check_kl_diag_gaussians(kl_fn: Callable[..., torch.Tensor]) -> str:
    """``kl_fn(mu_q, logvar_q, mu_p, logvar_p)``: ``[N]``, KL(q || p) of diagonal Gaussians, summed over dims."""
    mu_q, lv_q, mu_p, lv_p = _kl_case()
    n = len(mu_q)
    out = _call_kl(kl_fn, mu_q.clone(), lv_q.clone(), mu_p.clone(), lv_p.clone())
    per_dim = _kl(mu_q, lv_q, mu_p, lv_p)
    if isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(per_dim.shape):
        if close(out.detach().float(), per_dim, 1e-4):
            raise Wrong("these are the KLs of each dimension, [N, d]: sum them over the last dimension, .sum(-1)")
        raise Wrong(f"the answer should have shape ({n},), one KL per row (summed over dimensions), "
                    f"not {tuple(out.shape)}")
    kl = as_tensor(out, "the KL", shape=(n,))
    expected = per_dim.sum(-1)
    if close(kl, expected, 1e-4):
        same = as_tensor(_call_kl(kl_fn, mu_q, lv_q, mu_q, lv_q), "KL(q || q)", shape=(n,))
        if not close(same, torch.zeros(n), 1e-5):
            raise Wrong("KL(q || q) should be 0 for every row")
        std_normal = as_tensor(_call_kl(kl_fn, mu_q, lv_q, torch.zeros_like(mu_q), torch.zeros_like(lv_q)),
                               "KL(q || N(0, I))", shape=(n,))
        if not close(std_normal, 0.5 * (mu_q**2 + lv_q.exp() - 1 - lv_q).sum(-1), 1e-4):
            raise Wrong("with p = N(0, I) your KL should reduce to the closed form of section 1")
        return "KL(q || p) = 1/2 sum(log var_p - log var_q + (var_q + (mu_q - mu_p)^2) / var_p - 1)"
    if close(kl, _kl(mu_p, lv_p, mu_q, lv_q).sum(-1), 1e-4):
        raise Wrong("you computed KL(p || q): the KL is not symmetric; swap the roles, KL(q || p) divides by var_p")
    if close(kl, 2 * expected, 1e-4):
        raise Wrong("your values are twice the KL: the formula has a factor 1/2 in front")
    var_q, var_p = lv_q.exp(), lv_p.exp()
    no_minus_one = 0.5 * (lv_p - lv_q + (var_q + (mu_q - mu_p) ** 2) / var_p).sum(-1)
    if close(kl, no_minus_one, 1e-4):
        raise Wrong("you left out the -1 in each dimension (without it, KL(q || q) would be d / 2, not 0)")
    std_q, std_p = (0.5 * lv_q).exp(), (0.5 * lv_p).exp()
    with_std = 0.5 * (lv_p - lv_q + (std_q + (mu_q - mu_p) ** 2) / std_p - 1).sum(-1)
    if close(kl, with_std, 1e-4):
        raise Wrong("you used standard deviations where the formula has variances: var = exp(logvar)")
    if close(kl, expected.mean().expand(n), 1e-4) or (kl.numel() == n and close(kl.sum(), expected.mean(), 1e-4)):
        raise Wrong("return one KL per row, [N]; do not average over the rows")
    return _fail(kl_fn, kl, expected)


def _fail(kl_fn: Callable[..., torch.Tensor], kl: torch.Tensor, expected: torch.Tensor) -> str:
    """The hint for an unrecognised wrong KL: which of two cases with a known answer it gets wrong."""
    mu_q, lv_q, _, _ = _kl_case()
    n = len(mu_q)
    same = as_tensor(_call_kl(kl_fn, mu_q, lv_q, mu_q, lv_q), "KL(q || q)", shape=(n,))
    if not close(same, torch.zeros(n), 1e-5):
        raise Wrong(f"KL(q || q) should be 0 for every row, yours is {same[0]:.4f} for the first: some term does not "
                    "cancel when p = q")
    zeros = torch.zeros_like(mu_q)
    std_normal = as_tensor(_call_kl(kl_fn, mu_q, lv_q, zeros, zeros), "KL(q || N(0, I))", shape=(n,))
    closed_form = 0.5 * (mu_q**2 + lv_q.exp() - 1 - lv_q).sum(-1)
    if not close(std_normal, closed_form, 1e-4):
        raise Wrong(f"with p = N(0, I) your KL should reduce to the formula of section 1.4: first row "
                    f"{std_normal[0]:.4f}, expected {closed_form[0]:.4f}")
    i = int((kl - expected).abs().argmax())
    raise Wrong(f"right when p = q and when p = N(0, I), but row {i} gives {kl[i]:.4f}, expected {expected[i]:.4f}: "
                "look at how mu_p and var_p enter (the terms that vanish in those two cases)")


# --- exercise 4: AUROC by counting pairs ----------------------------------------------------------------------


def _call_auroc(auroc_fn: Callable[..., Any], *args: torch.Tensor) -> Any:
    """:func:`course_utils.exercises.call_refusing`, with scikit-learn's ROC functions and anomaly.auroc refused."""
    return call_refusing(AUROC_SHORTCUTS, "count the pairs yourself, without scikit-learn", auroc_fn, "your function",
                         *args, advice="compare every anomalous score with every normal one using torch operations")


@checker(solution="auroc_by_pairs")
def check_auroc(auroc_fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> str:
    """``auroc_fn(normal, anomalous)``: the share of (normal, anomalous) pairs the score ranks right, ties 1/2."""
    g = torch.Generator().manual_seed(0)
    normal = torch.randn(300, generator=g).round(decimals=1)  # rounded: many ties, as with integer scores
    anomalous = (torch.randn(200, generator=g) + 1.0).round(decimals=1)
    value = as_number(_call_auroc(auroc_fn, normal.clone(), anomalous.clone()), "your AUROC")
    expected = anomaly.auroc(normal, anomalous)  # scikit-learn's roc_auc_score, outside the learner's call
    if close(value, expected, 1e-6):
        perfect = as_number(_call_auroc(auroc_fn, torch.zeros(5), torch.ones(4)), "AUROC of a perfect score")
        if not close(perfect, 1.0, 1e-9):
            raise Wrong(f"a score that puts every anomaly above every normal item should give 1.0, not {perfect:.3f}")
        return f"{value:.4f}, the same as sklearn's roc_auc_score: P(anomalous scores higher), ties counted 1/2"
    if close(value, 1 - expected, 1e-6):
        raise Wrong("your value is 1 - AUROC: count the pairs where the *anomalous* item scores higher")
    diff = anomalous[:, None] - normal[None, :]
    if close(value, (diff > 0).double().mean().item(), 1e-6):
        raise Wrong("ties count as half a correct pair: a pair with equal scores should add 1/2, not 0")
    if close(value, (diff >= 0).double().mean().item(), 1e-6):
        raise Wrong("ties count as half a correct pair, not a whole one")
    if close(value, (diff > 0).double().sum().item(), 1e-6) or value > 1:
        raise Wrong("divide the count of correctly ranked pairs by the number of pairs, len(normal) * len(anomalous)")
    raise Wrong(f"your AUROC is {value:.4f}, expected {expected:.4f}: every (anomalous, normal) pair counts once, "
                "1 if the anomalous score is higher, 1/2 if the scores are equal, 0 otherwise; divide by the number "
                "of pairs")
