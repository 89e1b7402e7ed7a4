"""course_utils.exercises.vae: notebook 03's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch.distributions import Normal, kl_divergence

from course_utils import vae
from course_utils.exercises import vae as ex
from course_utils.solutions import vae as ref
from tests.checks import assert_not_done, assert_right, assert_wrong

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest

# --- exercise 1: the reparameterised sampler ----------------------------------------------------------------


def sampler(variant: str = "right"):
    def reparameterize(mu, logvar, k):
        std = {"variance": logvar.exp(), "logvar": logvar, "right": torch.exp(0.5 * logvar)}.get(variant,
                                                                                               torch.exp(0.5 * logvar))
        eps = torch.randn(mu.shape[0], k, mu.shape[1])
        mu_k, std_k = mu[:, None].expand(-1, k, -1), std[:, None].expand(-1, k, -1)
        if variant == "torch.normal":
            return torch.normal(mu_k, std_k)  # keeps the graph but passes zero gradients
        if variant == "sample":
            return torch.distributions.Normal(mu_k, std_k).sample()
        if variant == "no noise":
            return mu_k * 1.0
        if variant == "no mu":
            return std_k * eps
        if variant == "detached std":
            return mu_k + std_k.detach() * eps
        if variant == "one eps per image":
            return mu_k + std_k * torch.randn_like(mu)[:, None]
        if variant == "one eps per code index":
            return mu_k + std_k * torch.randn(k, mu.shape[1])
        return mu_k + std_k * eps

    return reparameterize


def test_reparameterize():
    assert_right(ex.check_reparameterize(ref.sample_z))
    assert_right(ex.check_reparameterize(sampler()))
    assert_wrong(ex.check_reparameterize(sampler("variance")), "variance exp(logvar)", "exp(0.5 * logvar)")
    assert_wrong(ex.check_reparameterize(sampler("logvar")), "not logvar itself")
    assert_wrong(ex.check_reparameterize(sampler("torch.normal")), "no gradient reaches mu and logvar")
    assert_wrong(ex.check_reparameterize(sampler("sample")), "no gradient reaches mu and logvar")
    assert_wrong(ex.check_reparameterize(sampler("no noise")), "every z equals mu")
    assert_wrong(ex.check_reparameterize(sampler("no mu")), "centred on 0")
    assert_wrong(ex.check_reparameterize(sampler("detached std")), "no gradient reaches logvar")
    assert_wrong(ex.check_reparameterize(sampler("one eps per image")), "k codes of each image are all the same")
    assert_wrong(ex.check_reparameterize(sampler("one eps per code index")), "every image got the same noise")


def test_reparameterize_other_mistakes():
    def shifted(mu, logvar, k):
        return mu[:, None] + 1 + torch.exp(0.5 * logvar)[:, None] * torch.randn(len(mu), k, mu.shape[1])

    def detached_mu(mu, logvar, k):
        return mu.detach()[:, None] + torch.exp(0.5 * logvar)[:, None] * torch.randn(len(mu), k, mu.shape[1])

    def wrong_spread(mu, logvar, k):
        return mu[:, None] + torch.exp(0.4 * logvar)[:, None] * torch.randn(len(mu), k, mu.shape[1])

    def one_code(mu, logvar, k):  # section 1.3's one code per image, k ignored
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    assert_wrong(ex.check_reparameterize(shifted), "the column means of z are")
    assert_wrong(ex.check_reparameterize(detached_mu), "dz/dmu should be 1")
    assert_wrong(ex.check_reparameterize(wrong_spread), "the standard deviations of z are")
    assert_wrong(ex.check_reparameterize(one_code), "shape (2000, 10, 3)", "shape (2000, 3)")


def test_reparameterize_stub_and_crashes_get_plain_hints():
    def stub(mu, logvar, k):
        raise NotImplementedError

    assert_not_done(ex.check_reparameterize(stub))
    assert_not_done(ex.check_reparameterize(...))
    assert_wrong(ex.check_reparameterize(lambda mu, lv: mu), "your function raised TypeError")
    assert_wrong(ex.check_reparameterize(lambda mu, lv, k: mu[:5, None].expand(-1, k, -1)), "shape (2000, 10, 3)")


# --- exercise 2: the negative ELBO ---------------------------------------------------------------------------


def elbo_fn(variant: str = "right"):
    def negative_elbo(logits, x, mu, logvar):
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        if variant == "sigmoid twice":
            bce = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="none")
        if variant == "swapped":
            bce = F.binary_cross_entropy_with_logits(x, logits, reduction="none")
        if variant == "probabilities":  # F.binary_cross_entropy on the logits themselves
            bce = F.binary_cross_entropy(logits, x, reduction="none")
        if variant == "sigmoid, then probabilities":  # right, if less stable
            bce = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none")
        var = {"std": (0.5 * logvar).exp(), "logvar": logvar}.get(variant, logvar.exp())
        kl_d = 0.5 * (mu**2 + var - (0.0 if variant == "no -1" else 1.0) - logvar)
        if variant == "double KL":
            kl_d = 2 * kl_d
        recon, kl = bce.sum(dim=(1, 2, 3)), kl_d.sum(1)
        per_image = {"no KL": recon, "minus KL": recon - kl}.get(variant, recon + kl)
        return {
            "per image": per_image,
            "batch sum": per_image.sum(),
            "ELBO": -per_image.mean(),
            "mean over pixels": bce.mean() + kl.mean(),
            "mean over pixels and dims": bce.mean() + kl_d.mean(),
            "mean over dims": recon.mean() + kl_d.mean(),
            "recon summed over batch": F.binary_cross_entropy_with_logits(logits, x, reduction="sum") + kl.mean(),
            "KL summed over batch": recon.mean() + kl.sum(),
            "item": per_image.mean().item(),
            "detached mu": (recon + 0.5 * (mu.detach() ** 2 + var - 1 - logvar).sum(1)).mean(),
        }.get(variant, per_image.mean()) if variant != "package" else vae.vae_loss(logits, x, mu, logvar)[0]

    return negative_elbo


def test_negative_elbo():
    assert_right(ex.check_negative_elbo(ref.negative_elbo))
    assert_right(ex.check_negative_elbo(elbo_fn()))
    assert_right(ex.check_negative_elbo(elbo_fn("sigmoid, then probabilities")))


@pytest.mark.parametrize(("variant", "fragment"), [
    ("per image", "average them over the batch with .mean()"),
    ("batch sum", "summed over the batch as well"),
    ("ELBO", "this is the ELBO"),
    ("mean over pixels", "averaged over the pixels (the default reduction='mean')"),
    ("mean over pixels and dims", "averaged over the pixels and over the latent dimensions"),
    ("mean over dims", "KL is averaged over the latent dimensions"),
    ("recon summed over batch", "reconstruction term is summed over the batch too"),
    ("KL summed over batch", "KL is summed over the batch too"),
    ("no KL", "the KL term is missing"),
    ("minus KL", "the KL's sign"),
    ("sigmoid twice", "applies the sigmoid itself"),
    ("swapped", "logits first and the images second"),
    ("probabilities", "F.binary_cross_entropy takes probabilities"),
    ("double KL", "twice the closed form"),
    ("no -1", "left out the -1"),
    ("std", "not the standard deviation"),
    ("logvar", "logvar is log(sigma^2)"),
    ("item", "must stay a tensor in the graph"),
    ("detached mu", "no gradient reaches mu"),
])
def test_negative_elbo_names_each_mistake(variant, fragment):
    assert_wrong(ex.check_negative_elbo(elbo_fn(variant)), fragment)


def test_negative_elbo_other_answers_and_stub():
    def stub(logits, x, mu, logvar):
        raise NotImplementedError

    def old_order(x, logits, mu, logvar):  # the arguments in the other order: logits and images swapped
        return ref.negative_elbo(logits, x, mu, logvar)

    assert_not_done(ex.check_negative_elbo(stub))
    assert_wrong(ex.check_negative_elbo(old_order), "the logits and the images are swapped")
    assert_wrong(ex.check_negative_elbo(lambda logits, x, mu, logvar: logits.mean()), "expected", "reconstruction")
    assert_wrong(ex.check_negative_elbo(lambda logits, x, mu, logvar: mu), "one number, the batch mean")
    assert_wrong(ex.check_negative_elbo(lambda logits, x: x), "your function raised TypeError")


def test_negative_elbo_case_tells_the_mistakes_apart():
    """Every wrong answer the checker names is far (relative 1e-3) from the right one and from the others."""
    x, logits, mu, logvar = ex._elbo_case()
    right = ref.negative_elbo(logits, x, mu, logvar).item()
    assert abs(right - vae.vae_loss(logits, x, mu, logvar)[0].item()) < 1e-4 * right
    values = [right] + [v.item() for v, _ in ex._elbo_mistakes(x, logits, mu, logvar)]
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            assert abs(a - b) > 1e-3 * max(abs(a), abs(b)), (a, b)


# --- exercise 3: KL between diagonal Gaussians -----------------------------------------------------------------


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
    assert_right(ex.check_kl_diag_gaussians(ref.kl_diag_gaussians))
    assert_right(ex.check_kl_diag_gaussians(kl_fn()))
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("library")), "calls torch.distributions.kl_divergence")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("swapped")), "KL(p || q)")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("std")), "standard deviations where the formula has variances")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("no -1")), "left out the -1")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("double")), "twice the KL")
    assert_wrong(ex.check_kl_diag_gaussians(kl_fn("per dim")), "sum them over the last dimension")
    assert_wrong(ex.check_kl_diag_gaussians(lambda a, b, c, d: (a - c).pow(2).sum(-1)), "reduce to the formula")
    averaged = lambda a, b, c, d: kl_fn()(a, b, c, d).mean().expand(len(a))  # noqa: E731
    assert_wrong(ex.check_kl_diag_gaussians(averaged), "do not average over the rows")
    assert_wrong(ex.check_kl_diag_gaussians(lambda a, b, c, d: kl_fn()(a, b, c, d)[:, None]), "should have shape (6,)")


def test_kl_refuses_torch_kl_by_every_route():
    import torch.distributions as dist
    import torch.distributions.kl as torch_kl

    def via_module(mu_q, lv_q, mu_p, lv_p):
        return dist.kl.kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())).sum(-1)

    kl_divergence(Normal(0.0, 1.0), Normal(1.0, 2.0))  # torch caches the looked-up function: the check must not
    for answer in (kl_fn("library"), via_module):
        assert_wrong(ex.check_kl_diag_gaussians(answer), "calls torch.distributions.kl_divergence", "formula")
    assert torch_kl.kl_divergence is kl_divergence and dist.kl_divergence is kl_divergence  # restored
    assert kl_divergence(Normal(0.0, 1.0), Normal(0.0, 1.0)).item() == 0.0  # and working after the check
    assert_right(ex.check_kl_diag_gaussians(kl_fn()))


def test_kl_unrecognised_mistakes_are_located_by_two_known_cases():
    def plus_one(mu_q, lv_q, mu_p, lv_p):  # + 1 instead of - 1: KL(q || q) is d, not 0
        var_q, var_p = lv_q.exp(), lv_p.exp()
        return 0.5 * (lv_p - lv_q + (var_q + (mu_q - mu_p) ** 2) / var_p + 1).sum(-1)

    def undivided(mu_q, lv_q, mu_p, lv_p):  # (mu_q - mu_p)^2 not divided by var_p: right for p = q and p = N(0, I)
        var_q, var_p = lv_q.exp(), lv_p.exp()
        return 0.5 * (lv_p - lv_q + var_q / var_p + (mu_q - mu_p) ** 2 - 1).sum(-1)

    assert_wrong(ex.check_kl_diag_gaussians(plus_one), "KL(q || q) should be 0", "does not cancel")
    assert_wrong(ex.check_kl_diag_gaussians(undivided), "right when p = q and when p = N(0, I)", "row")


def test_hints_do_not_print_the_answers_code():
    """The hints name the mistake; none prints the broadcasting of Exercise 4 or a full formula of Exercise 3."""
    for result in (ex.check_auroc(lambda n, a: 0.5), ex.check_auroc(auroc_fn("ties 0")),
                   ex.check_kl_diag_gaussians(lambda a, b, c, d: (a - c).pow(2).sum(-1))):
        text = str(result)
        assert "[:, None]" not in text and "(mu_q - mu_p)^2) / var_p" not in text, text


def test_kl_stub_gets_a_plain_hint():
    def stub(mu_q, logvar_q, mu_p, logvar_p):
        raise NotImplementedError

    assert_not_done(ex.check_kl_diag_gaussians(stub))


# --- exercise 4: AUROC by counting pairs --------------------------------------------------------------------------


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
    assert_right(ex.check_auroc(ref.auroc_by_pairs))
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


# --- the package's one-liners are refused -------------------------------------------------------------------


def test_sampler_refuses_the_package_and_torch_rsample():
    """Each shortcut samples right outside the checker; the checker refuses it, names it, and restores it."""
    original, rsample = vae.reparameterize, Normal.rsample
    by_package = lambda mu, logvar, k: vae.reparameterize(mu[:, None].expand(-1, k, -1),  # noqa: E731
                                                          logvar[:, None].expand(-1, k, -1))
    by_rsample = lambda mu, logvar, k: Normal(mu, (0.5 * logvar).exp()).rsample((k,)).transpose(0, 1)  # noqa: E731
    mu, logvar = torch.zeros(4, 3, requires_grad=True), torch.zeros(4, 3, requires_grad=True)
    for shortcut in (by_package, by_rsample):
        assert shortcut(mu, logvar, 2).requires_grad  # a right, differentiable answer outside the checker
    assert_wrong(ex.check_reparameterize(by_package), "write the trick yourself", "calls vae.reparameterize",
                 "torch.randn")
    assert_wrong(ex.check_reparameterize(vae.reparameterize), "is vae.reparameterize itself")
    assert_wrong(ex.check_reparameterize(by_rsample), "calls torch.distributions.Normal.rsample")
    assert vae.reparameterize is original and Normal.rsample is rsample
    assert_right(ex.check_reparameterize(sampler()))


def test_negative_elbo_refuses_the_package_loss_and_its_terms():
    original = (vae.vae_loss, vae.bernoulli_nll, vae.gaussian_kl)
    x, logits, mu, logvar = ex._elbo_case()

    def by_terms(logits, x, mu, logvar):  # the package's two terms, added by hand
        return (vae.bernoulli_nll(logits, x) + vae.gaussian_kl(mu, logvar).sum(1)).mean()

    def hidden(logits, x, mu, logvar):  # catches the refusal, then answers anyway
        try:
            return vae.vae_loss(logits, x, mu, logvar)[0]
        except Exception:
            return ref.negative_elbo(logits, x, mu, logvar)

    right = ref.negative_elbo(logits, x, mu, logvar)
    for shortcut in (elbo_fn("package"), by_terms):
        assert torch.allclose(shortcut(logits, x, mu, logvar), right)  # right outside the checker
    assert_wrong(ex.check_negative_elbo(elbo_fn("package")), "write the loss yourself", "calls vae.vae_loss",
                 "section 1.4")
    assert_wrong(ex.check_negative_elbo(by_terms), "calls vae.bernoulli_nll")
    assert_wrong(ex.check_negative_elbo(hidden), "calls vae.vae_loss")
    assert (vae.vae_loss, vae.bernoulli_nll, vae.gaussian_kl) == original


def test_auroc_refuses_scikit_learn_by_every_route():
    """anomaly.auroc, and scikit-learn's roc_auc_score or roc_curve + auc, imported before the check or not."""
    import sklearn.metrics
    from sklearn.metrics import auc, roc_auc_score, roc_curve

    from course_utils import anomaly

    def labels_scores(normal, anomalous):
        return [0] * len(normal) + [1] * len(anomalous), torch.cat([normal, anomalous]).numpy()

    answers = {
        "anomaly.auroc": lambda n, a: anomaly.auroc(n, a),
        "module attribute": lambda n, a: sklearn.metrics.roc_auc_score(*labels_scores(n, a)),
        "imported before the check": lambda n, a: roc_auc_score(*labels_scores(n, a)),
        "roc_curve and auc": lambda n, a: auc(*roc_curve(*labels_scores(n, a))[:2]),
    }
    originals = (anomaly.auroc, sklearn.metrics.roc_auc_score, sklearn.metrics.roc_curve, sklearn.metrics.auc)
    g = torch.Generator().manual_seed(0)
    normal, anomalous = torch.randn(30, generator=g), torch.randn(20, generator=g) + 1
    for name, answer in answers.items():
        assert abs(answer(normal, anomalous) - ref.auroc_by_pairs(normal, anomalous)) < 1e-9, name  # right outside
        result = ex.check_auroc(answer)
        assert_wrong(result, "count the pairs yourself, without scikit-learn", "torch operations")
        assert ("anomaly.auroc" if name == "anomaly.auroc" else "scikit-learn's") in result.message, (name, result)
    assert_wrong(ex.check_auroc(anomaly.auroc), "is anomaly.auroc itself")
    assert (anomaly.auroc, sklearn.metrics.roc_auc_score, sklearn.metrics.roc_curve, sklearn.metrics.auc) == originals
    assert anomaly.auroc(torch.zeros(3), torch.ones(2)) == 1.0  # and working after the checks
    assert_right(ex.check_auroc(auroc_fn()))
