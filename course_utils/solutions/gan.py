"""Reference solutions of notebook 02 (GANs): shown on request by ``show_solution("name")``, never run by it."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gan_value(p_data, p_g, dx):
    """V(D*, G) on a grid: E_data[log D*] + E_g[log(1 - D*)], each expectation a sum times dx."""
    mass = (p_data + p_g) > 0  # grid points where neither density has mass add nothing (and D* is 0/0 there)
    p, q = p_data[mass], p_g[mass]
    d_opt = p / (p + q)  # the optimal discriminator at every other grid point
    integrand = torch.xlogy(p, d_opt) + torch.xlogy(q, 1 - d_opt)  # xlogy(0, 0) = 0: the limit of p log p
    return float(integrand.sum() * dx)


def d_step(G, D, opt_d, real, z, real_label=0.9):
    """One update of D on a real and a fake batch; returns D's loss as a float."""
    fake = G(z).detach()  # detach: D's update must not flow into G
    d_real, d_fake = D(real), D(fake)  # logits
    # one-sided label smoothing: the real batch's target is real_label, the fakes' stays 0
    loss = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_label))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    opt_d.zero_grad()  # clear gradients left by an earlier backward pass
    loss.backward()
    opt_d.step()
    return loss.item()


def minimax_g_step(G, D, opt_g, z):
    """One update of G with the minimax loss, the batch mean of log(1 - D(G(z))); returns that loss as a float."""
    logits = D(G(z))  # no detach: G's gradient flows back through D
    # log(1 - sigmoid(l)) = -softplus(l), exact for any logit (1 - sigmoid(l) rounds to 0 when D is fooled)
    loss = -F.softplus(logits).mean()
    opt_g.zero_grad()  # clear gradients left by an earlier backward pass
    loss.backward()
    opt_g.step()
    return loss.item()


def diagonal_fd(feats1, feats2):
    """The squared Fréchet distance between diagonal Gaussians fitted to two [N, d] sets of features."""
    a, b = feats1.double(), feats2.double()
    mean_gap = (a.mean(dim=0) - b.mean(dim=0)).square().sum()
    # diagonal covariances: tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) = sum of (sd1 - sd2)^2 over the features
    spread_gap = (a.std(dim=0) - b.std(dim=0)).square().sum()  # std: unbiased (N - 1), as torch.cov
    return float(mean_gap + spread_gap)
