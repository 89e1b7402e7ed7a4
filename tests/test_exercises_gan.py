"""course_utils.exercises.gan: notebook 02's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils import evaluation, gan
from course_utils.exercises import gan as ex
from course_utils.solutions.gan import d_step, diagonal_fd, gan_value, minimax_g_step
from tests.checks import assert_not_done, assert_right, assert_wrong

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest

# --- V(D*, G) ----------------------------------------------------------------------------------------


def test_gan_value():
    assert_right(ex.check_gan_value(gan_value))
    assert_wrong(ex.check_gan_value(lambda p, q, dx: -gan_value(p, q, dx)), "sign is flipped")
    assert_wrong(ex.check_gan_value(lambda p, q, dx: gan_value(p, q, 1.0)), "multiply the sum by dx")

    def swapped(p, q, dx):
        d_star = p / (p + q)
        return float((p * torch.log(1 - d_star) + q * torch.log(d_star)).sum() * dx)

    assert gan_value(torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.5]), 1.0) == gan_value(
        torch.tensor([0.5, 0.5]), torch.tensor([0.2, 0.8]), 1.0)  # V(D*, G) is symmetric: no hint for that swap
    assert_wrong(ex.check_gan_value(swapped), "terms are swapped")
    half = lambda p, q, dx: float((p * torch.log(torch.tensor(0.5)) + q * torch.log(torch.tensor(0.5))).sum() * dx)
    assert_wrong(ex.check_gan_value(half), "D = 1/2 everywhere")
    assert_wrong(ex.check_gan_value(lambda p, q, dx: 0.3), "expected", "for p_g = p_data", "yours gives 0.3000")


def test_gan_value_needs_zero_log_zero():
    naive = lambda p, q, dx: float((p * torch.log(p / (p + q)) + q * torch.log(q / (p + q))).sum() * dx)
    assert_wrong(ex.check_gan_value(naive), "0 on parts of the grid", "torch.xlogy")  # nan from 0 * log 0
    tiny = lambda p, q, dx: naive(p + 1e-12, q + 1e-12, dx)  # another way past 0 log 0: right to 1e-3
    assert_right(ex.check_gan_value(tiny))
    floor = lambda p, q, dx: gan_value(p, q, dx) - float(((p == 0) | (q == 0)).double().mean())  # finite, but wrong
    assert_wrong(ex.check_gan_value(floor), "do not overlap", "JSD = log 2")
    result = ex.check_gan_value(gan_value)
    assert_right(result)
    assert "0.5 and 4 apart: 0.0000 and 0.0000" in result.message


def test_gan_value_refuses_scipy_divergences():
    import math

    import scipy.special
    import scipy.stats
    from scipy.spatial.distance import jensenshannon

    def by_jsd(p, q, dx):  # cell 15's line, applied to the exercise: right value, D* never formed
        return 2 * jensenshannon(p.numpy(), q.numpy()) ** 2 - math.log(4)

    js = jensenshannon

    def by_alias(p, q, dx):
        return 2 * js(p.numpy(), q.numpy()) ** 2 - math.log(4)

    def by_entropy(p, q, dx):  # scipy.stats.entropy calls scipy.special.rel_entr; a right answer if that fails
        try:
            m = ((p + q) / 2).numpy()
            return float(scipy.stats.entropy(p.numpy(), m) + scipy.stats.entropy(q.numpy(), m)) - math.log(4)
        except Exception:
            return gan_value(p, q, dx)

    for fn in (by_jsd, by_alias):
        result = ex.check_gan_value(fn)
        assert_wrong(result, "jensenshannon", "D* = p_data / (p_data + p_g)", "torch.xlogy")
        assert "matches" not in result.message
    assert_wrong(ex.check_gan_value(by_entropy), "calls scipy.special.rel_entr", "torch.xlogy")
    assert_wrong(ex.check_gan_value(jensenshannon), "jensenshannon")
    assert scipy.special.rel_entr(1.0, 1.0) == 0.0  # restored after the check
    assert_right(ex.check_gan_value(gan_value))  # the checker's own SciPy reference still works afterwards


def test_gan_value_fallback_hints_without_the_answer():
    off = lambda p, q, dx: gan_value(p, q, dx) + 0.5 * float((p - q).abs().sum() * dx)  # right only where p_g = p_data
    result = ex.check_gan_value(off)
    assert_wrong(result, "you do get -log 4", 'show_solution("gan_value")')
    assert "log(1 - D*)" not in result.message and "p_data / (p_data + p_g)" not in result.message


def test_gan_value_stub_and_crash():
    def stub(p, q, dx):
        raise NotImplementedError

    assert_not_done(ex.check_gan_value(stub))
    assert_wrong(ex.check_gan_value(lambda p: p), "raised TypeError")


# --- the discriminator's step --------------------------------------------------------------------------------


def wrong_d_step(real_target=None, fake_target=0.0, detach=True, zero_grad=True, step=True, halve=False):
    """A discriminator step with one mistake switched on; ``real_target`` None means the real_label passed in."""
    def step_fn(G, D, opt_d, real, z, real_label=0.9):
        fake = G(z)
        d_real, d_fake = D(real), D(fake.detach() if detach else fake)
        target = real_label if real_target is None else real_target
        loss = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, target))
                + F.binary_cross_entropy_with_logits(d_fake, torch.full_like(d_fake, fake_target)))
        loss = loss / 2 if halve else loss
        if zero_grad:
            opt_d.zero_grad()
        loss.backward()
        if step:
            opt_d.step()
        return loss.item()

    return step_fn


def test_d_step_right():
    result = ex.check_d_step(d_step)
    assert_right(result)
    assert "gan.gan_step" in result.message and "0.9" in result.message
    assert_right(ex.check_d_step(wrong_d_step()))  # the helper without a mistake: right too


def test_d_step_names_each_mistake():
    assert_wrong(ex.check_d_step(wrong_d_step(detach=False)), "detach the fakes")
    assert_wrong(ex.check_d_step(wrong_d_step(real_target=0.0, fake_target=0.9)), "labels are swapped")
    assert_wrong(ex.check_d_step(wrong_d_step(fake_target=0.1)), "smoothing is one-sided")
    assert_wrong(ex.check_d_step(wrong_d_step(real_target=1.0)), "real target is 0.9")
    assert_wrong(ex.check_d_step(wrong_d_step(halve=True)), "sum of the two BCE losses")
    assert_wrong(ex.check_d_step(wrong_d_step(zero_grad=False)), "opt_d.zero_grad()")
    assert_wrong(ex.check_d_step(wrong_d_step(step=False)), "call opt_d.step()")
    assert_wrong(ex.check_d_step(wrong_d_step(fake_target=0.5)), "expected D's loss")


def test_d_step_unfinished_and_the_random_state():
    def stub(G, D, opt_d, real, z, real_label=0.9):
        raise NotImplementedError

    assert_not_done(ex.check_d_step(stub))
    state = torch.get_rng_state()
    assert_right(ex.check_d_step(d_step))
    assert torch.equal(state, torch.get_rng_state())  # the checker leaves the notebook's random state alone


# --- the minimax generator step ------------------------------------------------------------------------------


def g_step(loss_of=lambda logits: -F.softplus(logits).mean(), detach=False, zero_grad=True, step_d=False):
    """A generator step with one mistake switched on; ``loss_of`` maps D's logits to the loss."""
    def step(G, D, opt_g, z):
        fake = G(z)
        loss = loss_of(D(fake.detach() if detach else fake))
        if zero_grad:
            opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        if step_d:
            torch.optim.SGD(D.parameters(), lr=0.1).step()
        return loss.item()

    return step


def test_minimax_g_step_right():
    result = ex.check_minimax_g_step(minimax_g_step)
    assert_right(result)
    assert "saturates" in result.message
    assert_right(ex.check_minimax_g_step(g_step(lambda x: F.logsigmoid(-x).mean())))  # log(1 - sigmoid(x)), another way


def test_minimax_g_step_must_not_use_a_bce_helper():
    bce = torch.nn.BCEWithLogitsLoss()
    for loss_of in (lambda x: -F.binary_cross_entropy_with_logits(x, torch.zeros_like(x)),
                    lambda x: -bce(x, torch.zeros_like(x)),
                    lambda x: -torch.nn.BCELoss()(torch.sigmoid(x), torch.zeros_like(x))):
        assert_wrong(ex.check_minimax_g_step(g_step(loss_of)), "without a BCE helper")
    x = torch.tensor([0.3, -2.0])  # and the helpers are back to normal afterwards
    assert torch.allclose(bce(x, torch.zeros_like(x)), F.softplus(x).mean())


def test_minimax_g_step_names_each_mistake():
    assert_wrong(ex.check_minimax_g_step(g_step(lambda x: F.softplus(x).mean())), "sign is flipped")
    assert_wrong(ex.check_minimax_g_step(g_step(lambda x: F.softplus(-x).mean())), "non-saturating")
    assert_wrong(ex.check_minimax_g_step(g_step(lambda x: -F.softplus(x).sum())), "wrong reduction")
    assert_wrong(ex.check_minimax_g_step(g_step(detach=True)), "no gradient reached G", "detach")
    assert_wrong(ex.check_minimax_g_step(g_step(zero_grad=False)), "opt_g.zero_grad()")
    assert_wrong(ex.check_minimax_g_step(g_step(step_d=True)), "D's weights changed")
    assert_wrong(ex.check_minimax_g_step(g_step(lambda x: torch.log(1 - torch.sigmoid(x)).mean())),
                 "rounds to 0", "sigmoid(-l)")
    assert_wrong(ex.check_minimax_g_step(g_step(lambda x: torch.log1p(-torch.sigmoid(x)).mean())),  # section 1's form
                 "rounds to 0")
    assert_wrong(ex.check_minimax_g_step(g_step(lambda x: (x - 1).mean())), "expected a loss of")


def test_minimax_g_step_without_a_gradient_and_unfinished():
    def no_grad(G, D, opt_g, z):
        with torch.no_grad():
            loss = -F.softplus(D(G(z))).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        return loss.item()

    assert_wrong(ex.check_minimax_g_step(no_grad), "no gradient reached G")
    assert_wrong(ex.check_minimax_g_step(lambda G, D, opt_g, z: "done"), "should be a number")
    assert_not_done(ex.check_minimax_g_step(lambda G, D, opt_g, z: ...))


# --- the Fréchet distance of diagonal Gaussians ------------------------------------------------------------------


def diag_fd(a, b, dim=0, unbiased=True, spread=lambda v1, v2: (v1.sqrt() - v2.sqrt()).square().sum(), squared=True):
    """A diagonal FD with one mistake switched on."""
    a, b = a.double(), b.double()
    gap = (a.mean(dim) - b.mean(dim)).square().sum()
    var1, var2 = a.var(dim, unbiased=unbiased), b.var(dim, unbiased=unbiased)
    return float((gap if squared else gap.sqrt()) + spread(var1, var2))


def test_diagonal_fd_right():
    result = ex.check_diagonal_fd(diagonal_fd)
    assert_right(result)
    assert "full Fréchet distance" in result.message
    assert_right(ex.check_diagonal_fd(diag_fd))
    via_cov = lambda a, b: diag_fd(a, b, spread=lambda v1, v2: (v1 + v2 - 2 * (v1 * v2).sqrt()).sum())
    assert_right(ex.check_diagonal_fd(via_cov))


def test_diagonal_fd_names_each_mistake():
    mean_only = ex.check_diagonal_fd(lambda a, b: diag_fd(a, b, spread=lambda v1, v2: 0.0))
    assert_wrong(mean_only, "only the mean term", "covariance (trace) term is missing")
    assert_wrong(ex.check_diagonal_fd(lambda a, b: diag_fd(a, b, squared=False)), "square the distance")
    variances = lambda a, b: diag_fd(a, b, spread=lambda v1, v2: (v1 - v2).square().sum())
    assert_wrong(ex.check_diagonal_fd(variances), "compared variances")
    for message in (mean_only.message, ex.check_diagonal_fd(variances).message):
        assert "sd1_i - sd2_i" not in message  # names what is wrong, not the answer
    product = lambda a, b: diag_fd(a, b, spread=lambda v1, v2: (v1 + v2 - 2 * v1 * v2).sum())
    assert_wrong(ex.check_diagonal_fd(product), "square root of each entry")
    assert "sd1_i sd2_i" not in ex.check_diagonal_fd(product).message  # the hint does not hand out the term
    assert_wrong(ex.check_diagonal_fd(lambda a, b: diag_fd(a, b, unbiased=False)), "unbiased")
    assert_wrong(ex.check_diagonal_fd(lambda a, b: diag_fd(a, b, dim=1)), "dim 0")
    constant = ex.check_diagonal_fd(lambda a, b: 1.0)
    assert_wrong(constant, "expected", "yours gives 1.0000", 'show_solution("diagonal_fd")')
    assert "sd1_i - sd2_i)^2, with" not in constant.message  # no formula handed out
    off_when_large = lambda a, b: diagonal_fd(a, b) + (1.0 if len(a) > 2 else 0.0)  # right on the by-hand case only
    assert_wrong(ex.check_diagonal_fd(off_when_large), "yours gives 10.0000")  # the case worked by hand is 10


def test_diagonal_fd_must_not_use_the_full_frechet_distance():
    from course_utils import evaluation

    def full(a, b):
        mu1, s1 = evaluation.feature_stats(a)
        mu2, s2 = evaluation.feature_stats(b)
        return evaluation.frechet_distance(mu1, s1.diag().diag(), mu2, s2.diag().diag())

    assert abs(full(*ex._features()) - diagonal_fd(*ex._features())) < 1e-4  # right, but by the full formula
    assert_wrong(ex.check_diagonal_fd(full), "evaluation.feature_stats", "torch alone")
    assert callable(evaluation.frechet_distance) and evaluation.frechet_distance.__module__ == evaluation.__name__


def test_diagonal_fd_of_a_set_to_itself_and_unfinished():
    right = diagonal_fd(*ex._features())
    assert_wrong(ex.check_diagonal_fd(lambda a, b: right if len(b) != len(a) else 0.5), "distance 0 from itself")

    def stub(feats1, feats2):
        raise NotImplementedError

    assert_not_done(ex.check_diagonal_fd(stub))


def test_minimax_g_step_that_forgets_to_step_and_leaves_the_random_state_alone():
    def no_step(G, D, opt_g, z):
        loss = -F.softplus(D(G(z))).mean()
        opt_g.zero_grad()
        loss.backward()
        return loss.item()

    assert_wrong(ex.check_minimax_g_step(no_step), "call opt_g.step()")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.check_minimax_g_step(minimax_g_step)
    assert torch.equal(torch.rand(3), expected)


def test_diagonal_fd_refuses_the_notebooks_full_frechet_distance():
    def frechet_by_hand(mu1, sigma1, mu2, sigma2):  # stands for the notebook's cell
        return evaluation.frechet_distance(mu1, sigma1, mu2, sigma2)

    def borrowed(a, b):
        return frechet_by_hand(a.mean(0), torch.diag(a.var(0)), b.mean(0), torch.diag(b.var(0)))

    assert_wrong(ex.check_diagonal_fd(borrowed), "frechet_by_hand", "torch alone")


def test_d_step_that_calls_the_package_is_refused():
    def borrowed(G, D, opt_d, real, z, real_label):
        loss, _, _ = gan.discriminator_step(D, opt_d, real, G(z), None, real_label)
        return loss.item()

    assert_wrong(ex.check_d_step(borrowed), "gan.discriminator_step")
