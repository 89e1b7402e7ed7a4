"""course_utils.exercises.vae: notebook 03's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import torch
from sklearn.metrics import roc_auc_score
from torch.distributions import Normal, kl_divergence

from course_utils.exercises import vae as ex
from tests.checks import assert_right, assert_wrong

# --- exercise 1: the reparameterised sampler ----------------------------------------------------------------


def sampler(variant: str = "right"):
    def reparameterize(mu, logvar):
        std = {"variance": logvar.exp(), "logvar": logvar, "right": torch.exp(0.5 * logvar)}.get(variant,
                                                                                               torch.exp(0.5 * logvar))
        eps = torch.randn_like(mu)
        if variant == "torch.normal":
            return torch.normal(mu, std)  # keeps the graph but passes zero gradients
        if variant == "sample":
            return torch.distributions.Normal(mu, std).sample()
        if variant == "no noise":
            return mu * 1.0
        if variant == "no mu":
            return std * eps
        if variant == "detached std":
            return mu + std.detach() * eps
        return mu + std * eps

    return reparameterize


def test_reparameterize():
    assert_right(ex.check_reparameterize(sampler()))
    assert_wrong(ex.check_reparameterize(sampler("variance")), "variance exp(logvar)", "exp(0.5 * logvar)")
    assert_wrong(ex.check_reparameterize(sampler("logvar")), "not logvar itself")
    assert_wrong(ex.check_reparameterize(sampler("torch.normal")), "no gradient reaches mu and logvar")
    assert_wrong(ex.check_reparameterize(sampler("sample")), "no gradient reaches mu and logvar")
    assert_wrong(ex.check_reparameterize(sampler("no noise")), "every z equals mu")
    assert_wrong(ex.check_reparameterize(sampler("no mu")), "centred on 0")
    assert_wrong(ex.check_reparameterize(sampler("detached std")), "no gradient reaches logvar")


def test_reparameterize_stub_and_crashes_get_plain_hints():
    def stub(mu, logvar):
        raise NotImplementedError

    assert_wrong(ex.check_reparameterize(stub), "not done yet")
    assert_wrong(ex.check_reparameterize(...), "not done yet")
    assert_wrong(ex.check_reparameterize(lambda mu: mu), "your function raised TypeError")
    assert_wrong(ex.check_reparameterize(lambda mu, lv: mu[:5]), "shape (20000, 3)")


# --- exercise 2: KL between diagonal Gaussians -----------------------------------------------------------------


def kl_fn(variant: str = "right"):
    def kl(mu_q, lv_q, mu_p, lv_p):
        if variant == "swapped":
            mu_q, lv_q, mu_p, lv_p = mu_p, lv_p, mu_q, lv_q
        var_q, var_p = lv_q.exp(), lv_p.exp()
        if variant == "std":
            var_q, var_p = (0.5 * lv_q).exp(), (0.5 * lv_p).exp()
        minus_one = 0.0 if variant == "no -1" else 1.0
        per_dim = 0.5 * (lv_p - lv_q + (var_q + (mu_q - mu_p) ** 2) / var_p - minus_one)
        if variant == "double":
            per_dim = 2 * per_dim
        if variant == "per dim":
            return per_dim
        if variant == "library":
            return kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())).sum(-1)
        return per_dim.sum(-1)

    return kl


def test_kl_diag_gaussians():
    assert_right(ex.check_kl_diag_gaussians(kl_fn()))
    assert_right(ex.check_kl_diag_gaussians(kl_fn("library")))
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("swapped")), "KL(p || q)")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("std")), "standard deviations where the formula has variances")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("no -1")), "left out the -1")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("double")), "twice the KL")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("per dim")), "sum them over the last dimension")
    assert_wrong(ex.check_kl_diag_gaussians(lambda a, b, c, d: (a - c).pow(2).sum(-1)), "row")


def test_kl_stub_gets_a_plain_hint():
    def stub(mu_q, logvar_q, mu_p, logvar_p):
        raise NotImplementedError

    assert_wrong(ex.check_kl_diag_gaussians(stub), "not done yet")


# --- exercise 3: AUROC by counting pairs --------------------------------------------------------------------------


def auroc_fn(variant: str = "right"):
    def auroc(normal, anomalous):
        diff = anomalous[:, None] - normal[None, :]
        if variant == "reversed":
            diff = -diff
        ties = {"right": 0.5, "reversed": 0.5, "ties 0": 0.0, "ties 1": 1.0}.get(variant, 0.5)
        count = (diff > 0).double().sum() + ties * (diff == 0).double().sum()
        return count.item() if variant == "count" else (count / diff.numel()).item()

    return auroc


def test_auroc_checker():
    assert_right(ex.check_auroc(auroc_fn()))
    assert_wrong(ex.check_auroc(auroc_fn("reversed")), "1 - AUROC")
    assert_wrong(ex.check_auroc(auroc_fn("ties 0")), "ties count as half")
    assert_wrong(ex.check_auroc(auroc_fn("ties 1")), "not a whole one")
    assert_wrong(ex.check_auroc(auroc_fn("count")), "divide the count")
    assert_wrong(ex.check_auroc(lambda n, a: 0.5), "expected")
    assert_wrong(ex.check_auroc(lambda n, a: "high"), "should be a number")


def test_auroc_checker_test_case_has_ties_and_matches_the_pair_definition():
    g = torch.Generator().manual_seed(0)  # the checker's case, rebuilt
    normal = torch.randn(300, generator=g).round(decimals=1)
    anomalous = (torch.randn(200, generator=g) + 1.0).round(decimals=1)
    diff = anomalous[:, None] - normal[None, :]
    assert (diff == 0).sum() > 100  # enough ties that counting them wrong changes the answer
    pairs = ((diff > 0).double() + 0.5 * (diff == 0).double()).mean().item()
    sk = roc_auc_score([0] * 300 + [1] * 200, torch.cat([normal, anomalous]).numpy())
    assert abs(pairs - sk) < 1e-12
