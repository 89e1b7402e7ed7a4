"""Reference solutions of notebook 03's exercises (VAEs)."""

import torch
import torch.nn.functional as F


def sample_z(mu, logvar, k):
    """k codes z ~ N(mu, exp(logvar)) for each row of mu: [N, k, d], differentiable in mu and logvar."""
    std = torch.exp(0.5 * logvar)  # logvar is log(sigma^2)
    eps = torch.randn(mu.shape[0], k, mu.shape[1], device=mu.device)  # new noise for every code of every image
    return mu[:, None] + std[:, None] * eps  # [N, 1, d] broadcast against [N, k, d]


def negative_elbo(logits, x, mu, logvar):
    """The negative ELBO of each image (nats), averaged over the batch: one number."""
    # -log p(x|z): the binary cross-entropy of every pixel, summed over the pixels of each image -> [N]
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    # KL(q(z|x) || N(0, I)) in closed form, summed over the latent dimensions -> [N]
    kl = 0.5 * (mu**2 + torch.exp(logvar) - 1 - logvar).sum(1)
    return (recon + kl).mean()


def kl_diag_gaussians(mu_q, logvar_q, mu_p, logvar_p):
    """KL(q || p) of two diagonal Gaussians, summed over the last dimension: one value per row."""
    var_q, var_p = logvar_q.exp(), logvar_p.exp()
    per_dim = 0.5 * (logvar_p - logvar_q + (var_q + (mu_q - mu_p) ** 2) / var_p - 1)
    return per_dim.sum(-1)


def auroc_by_pairs(normal, anomalous):
    """The share of (normal, anomalous) pairs in which the anomalous score is higher, ties counted 1/2."""
    diff = anomalous.double()[:, None] - normal.double()[None, :]  # one entry per (anomalous, normal) pair
    return ((diff > 0).double() + 0.5 * (diff == 0).double()).mean().item()
