"""Reference solutions of notebook 04's exercises (diffusion models)."""

import torch

from course_utils import diffusion


def add_noise(x0, t, noise, alpha_bar):
    """x_t for each row of x0: t steps of noising in one, with the closed form of q(x_t | x_0)."""
    ab = alpha_bar[t].view(-1, *([1] * (x0.ndim - 1)))  # one alpha_bar per row, shaped to broadcast over pixels
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def reverse_step(x_t, eps, t, noise, betas, alpha_bar):
    """One DDPM step from x_t to x_{t-1}: the posterior mean from eps, plus noise of the posterior variance."""
    beta, ab = betas[t], alpha_bar[t]
    ab_prev = alpha_bar[t - 1] if t > 0 else torch.ones_like(ab)  # nothing is noised before the first step
    mean = (x_t - beta / torch.sqrt(1 - ab) * eps) / torch.sqrt(1 - beta)
    if t == 0:
        return mean
    variance = (1 - ab_prev) / (1 - ab) * beta
    return mean + torch.sqrt(variance) * noise


def guided_noise(model, x_t, t, labels, scale):
    """Classifier-free guidance at timestep t: the noise predicted with the labels and with the null class, combined."""
    tt = torch.full((len(x_t),), t, dtype=torch.long, device=x_t.device)  # one timestep per image
    null = torch.full_like(labels, model.null_class)  # "no label" for every image
    eps_cond, eps_uncond = model(torch.cat([x_t, x_t]), torch.cat([tt, tt]), torch.cat([labels, null])).chunk(2)
    return eps_uncond + scale * (eps_cond - eps_uncond)  # start from no label, move scale times towards the class


def ddim_sample(model, x, labels, steps, alpha_bar):
    """Deterministic DDIM sampling (eta = 0) from the noise x: `steps` steps from t = T - 1 down."""
    T = len(alpha_bar)  # noqa: N806
    visited = diffusion.sampling_timesteps(T, steps)  # T - 1, T - 1 - T/steps, ..., T/steps - 1
    for i, t in enumerate(visited):
        ab_now = alpha_bar[t]
        ab_then = alpha_bar[visited[i + 1]] if i + 1 < len(visited) else torch.ones_like(ab_now)  # the end: clean
        with torch.no_grad():
            eps = model(x, torch.full((len(x),), t, device=x.device), labels)  # the noise in x at level t
        clean = ((x - torch.sqrt(1 - ab_now) * eps) / torch.sqrt(ab_now)).clamp(-1, 1)  # x0_hat, in the data's range
        x = torch.sqrt(ab_then) * clean + torch.sqrt(1 - ab_then) * eps  # x0_hat at the next level, same noise
    return x
