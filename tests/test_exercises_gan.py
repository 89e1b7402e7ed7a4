"""course_utils.exercises.gan: notebook 02's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import evaluation
from course_utils.exercises import gan as ex
from tests.checks import assert_right, assert_wrong

# --- V(D*, G) ----------------------------------------------------------------------------------------


def value(p_data, p_g, dx):
    d_star = p_data / (p_data + p_g)
    return float((p_data * torch.log(d_star) + p_g * torch.log(1 - d_star)).sum() * dx)


def test_gan_value():
    assert_right(ex.check_gan_value(value))
    assert_wrong(ex.check_gan_value(lambda p, q, dx: -value(p, q, dx)), "sign is flipped")
    assert_wrong(ex.check_gan_value(lambda p, q, dx: value(p, q, 1.0)), "multiply the sum by dx")
    def swapped(p, q, dx):
        d_star = p / (p + q)
        return float((p * torch.log(1 - d_star) + q * torch.log(d_star)).sum() * dx)

    assert value(torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.5]), 1.0) == value(
        torch.tensor([0.5, 0.5]), torch.tensor([0.2, 0.8]), 1.0)  # V(D*, G) is symmetric: no hint for that swap
    assert_wrong(ex.check_gan_value(swapped), "terms are swapped")
    half = lambda p, q, dx: float((p * torch.log(torch.tensor(0.5)) + q * torch.log(torch.tensor(0.5))).sum() * dx)
    assert_wrong(ex.check_gan_value(half), "D = 1/2 everywhere")
    assert_wrong(ex.check_gan_value(lambda p, q, dx: 0.3), "expected")


def test_gan_value_stub_and_crash():
    def stub(p, q, dx):
        raise NotImplementedError

    assert_wrong(ex.check_gan_value(stub), "not done yet")
    assert_wrong(ex.check_gan_value(lambda p: p), "raised TypeError")


# --- the training step ----------------------------------------------------------------------------------


def make_step(real_label=0.9, detach=True, minimax=False, skip_g=False):
    def step(G, D, opt_g, opt_d, real, labels):
        z = torch.randn(len(real), G.config.z_dim)
        fake = G(z, labels)
        d_real = D(real, labels)
        d_fake = D(fake.detach() if detach else fake, labels)
        loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_label))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        if skip_g:
            return loss_d.item(), 0.0
        d_gen = D(fake, labels)
        if minimax:
            loss_g = -F.binary_cross_entropy_with_logits(d_gen, torch.zeros_like(d_gen))  # log(1 - D)
        else:
            loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_d.item(), loss_g.item()

    return step


def test_train_step():
    assert_right(ex.check_train_step(make_step()))
    assert_wrong(ex.check_train_step(make_step(real_label=1.0)), "one-sided label smoothing")
    assert_wrong(ex.check_train_step(make_step(minimax=True)), "non-saturating")
    assert_wrong(ex.check_train_step(make_step(skip_g=True)), "G did not change")
    assert_wrong(ex.check_train_step(lambda *a: 1.0), "as a tuple")


def test_train_step_without_detach_is_caught():
    assert_wrong(ex.check_train_step(make_step(detach=False)), "fake.detach()")


# --- the Fréchet distance ------------------------------------------------------------------------------------


def frechet(mu1, s1, mu2, s2):
    return evaluation.frechet_distance(mu1, s1, mu2, s2)


def test_frechet_distance():
    assert_right(ex.check_frechet_distance(frechet))
    assert_wrong(ex.check_frechet_distance(lambda m1, s1, m2, s2: float((m1 - m2).square().sum())), "mean term")
    tr = lambda m1, s1, m2, s2: float((m1 - m2).square().sum() + s1.trace() + s2.trace() - 2 * (s1 @ s2).trace())
    assert_wrong(ex.check_frechet_distance(tr), "tr(S1 S2)")
    elementwise = lambda m1, s1, m2, s2: float((m1 - m2).square().sum() + s1.trace() + s2.trace()
                                               - 2 * (s1 @ s2).clamp_min(0).sqrt().trace())
    assert_wrong(ex.check_frechet_distance(elementwise), "element by element")
    assert_wrong(ex.check_frechet_distance(...), "not done yet")
