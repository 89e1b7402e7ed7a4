"""Variational autoencoders: the models, the ELBO, training, and the measurements of notebook 03.

Taught in notebook 03:

- section 1, autoencoder -> VAE: :class:`Autoencoder`, :class:`MLPVAE`, :func:`reparameterize`,
  :func:`gaussian_kl` (the closed form), :func:`bernoulli_nll` and :func:`vae_loss` (summed over
  pixels, averaged over the batch), :func:`vae_step`; how loose the ELBO is:
  :func:`log_importance_weights` and :func:`importance_weighted_bound` (Burda et al. 2016);
- section 2, a convolutional VAE: :class:`ConvVAE`, :func:`fit_vae` (the training loop, with
  test evaluations); :class:`VAERecipe`, :data:`FAST_RECIPE` (section 1's) and
  :data:`RECIPES` (the conv VAE per profile), :func:`fit_recipe`, :func:`evaluate` (test -ELBO),
  :func:`sample`, :func:`reconstruct`, :func:`interpolate`;
- section 3, the latent space: :func:`encode_means`, :func:`kl_per_dim` and :func:`active_units`
  (posterior collapse), KL warm-up and free bits (arguments of :func:`vae_loss` and :func:`fit_vae`);
- section 4, the applications: synthesis and compression with the functions above; the
  anomaly scores are in :mod:`course_utils.anomaly`;
- section 6: :func:`train_vae`, what ``python -m course_utils.train vae`` runs (its speed
  benchmark, ``--bench``, is in :mod:`course_utils.benchmarks`).

Images are ``[N, 1, 28, 28]`` grey levels in [0, 1]; decoders return **logits** of a Bernoulli
per pixel, so the reconstruction term is ``binary_cross_entropy_with_logits`` (exact for any logit).
All quantities are in nats per image unless a name says bits.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.checkpoints import finish_run, register_model
from course_utils.cli import repeat_command
from course_utils.configs import choose_recipe, make_config, require_positive
from course_utils.datasets import image_tensors, tensor_batches
from course_utils.progress import TimeBudget, progress
from course_utils.runtime import get_device, seed_everything, training_time
from course_utils.training import evaluating, lr_at

IMAGE_SHAPE = (1, 28, 28)
PIXELS = 28 * 28
VAE_NAME = "vae_fmnist"
ELBO_SEED = 1234  # the noise seed of every test -ELBO in a card and in the notebook


# --- models (sections 1 and 2) --------------------------------------------------------------------


@dataclass(frozen=True)
class MLPConfig:
    """An MLP ``784 -> hidden -> latent`` and back (the classic PyTorch example is 400 and 20)."""

    latent_dim: int = 20
    hidden: int = 400

    def __post_init__(self) -> None:
        require_positive(self, "latent_dim", "hidden")


@dataclass(frozen=True)
class ConvConfig:
    """A convolutional VAE for 28x28 images: two stride-2 convolutions (28 -> 14 -> 7), then MLP layers.

    ``channels`` are the two convolutions' widths; ``hidden`` is the width of a fully connected layer
    between the 7x7 feature map and the latent code (0: none).
    """

    latent_dim: int = 16
    channels: tuple[int, int] = (32, 64)
    hidden: int = 0

    def __post_init__(self) -> None:
        require_positive(self, "latent_dim", "hidden", allow_zero=("hidden",))
        if len(self.channels) != 2 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                                          for c in self.channels):
            raise ValueError(f"ConvConfig.channels must be two ints >= 1, got {self.channels!r}")


def check_images(x: torch.Tensor) -> None:
    """Refuse anything but a batch of the course's images, ``[N, 1, 28, 28]``, with one clear line."""
    if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"images must be [N, 1, 28, 28], got shape {tuple(x.shape)}")


class LatentModel(nn.Module):
    """What the course's VAEs share: a per-pixel output bias, ``encode``, ``decode`` and ``forward``.

    Subclasses set ``self.encoder`` (images -> ``[N, 2 * latent_dim]``: means, then log-variances)
    and ``self.decoder`` (``[N, latent_dim]`` -> ``[N, 784]`` logits, without a last bias).
    """

    config: Any
    encoder: nn.Module
    decoder: nn.Module

    def _init_bias(self) -> None:
        # One logit per pixel, added to the decoder's output: set to the data's log-odds by init_pixel_bias.
        self.pixel_bias = nn.Parameter(torch.zeros(IMAGE_SHAPE))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each ``[N, latent_dim]``: the Gaussian q(z|x) (section 1)."""
        check_images(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``[N, 1, 28, 28]`` Bernoulli logits of p(x|z)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be [N, {self.latent_dim}], got shape {tuple(z.shape)}")
        return self.decoder(z).view(-1, *IMAGE_SHAPE) + self.pixel_bias

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, mu, logvar)``: encode, draw one z with :func:`reparameterize`, decode."""
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar, generator)), mu, logvar


@register_model
class MLPVAE(LatentModel):
    """The VAE of Kingma & Welling (2014) as in the PyTorch example: one hidden ReLU layer each way."""

    def __init__(self, config: MLPConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(MLPConfig, config, overrides)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, c.hidden), nn.ReLU(),
                                     nn.Linear(c.hidden, 2 * c.latent_dim))
        self.decoder = nn.Sequential(nn.Linear(c.latent_dim, c.hidden), nn.ReLU(),
                                     nn.Linear(c.hidden, PIXELS, bias=False))
        self._init_bias()


@register_model
class ConvVAE(LatentModel):
    """Convolutional encoder ``1 -> c1 -> c2`` channels (28 -> 14 -> 7), mirrored by transposed convolutions."""

    def __init__(self, config: ConvConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(ConvConfig, config, overrides)
        c1, c2 = c.channels
        flat = c2 * 7 * 7
        to_code = [nn.Linear(flat, c.hidden), nn.ReLU(), nn.Linear(c.hidden, 2 * c.latent_dim)] if c.hidden \
            else [nn.Linear(flat, 2 * c.latent_dim)]
        from_code = [nn.Linear(c.latent_dim, c.hidden), nn.ReLU(), nn.Linear(c.hidden, flat)] if c.hidden \
            else [nn.Linear(c.latent_dim, flat)]
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, 2, 1), nn.ReLU(),  # 28 -> 14
            nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),  # 14 -> 7
            nn.Flatten(), *to_code,
        )
        self.decoder = nn.Sequential(
            *from_code, nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(c1, 1, 4, 2, 1, bias=False),  # 14 -> 28
            nn.Flatten(),
        )
        self._init_bias()


@register_model
class Autoencoder(nn.Module):
    """A plain (deterministic) autoencoder with :class:`MLPVAE`'s layers: x -> z -> logits (section 1)."""

    def __init__(self, config: MLPConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(MLPConfig, config, overrides)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(PIXELS, c.hidden), nn.ReLU(),
                                     nn.Linear(c.hidden, c.latent_dim))
        self.decoder = nn.Sequential(nn.Linear(c.latent_dim, c.hidden), nn.ReLU(), nn.Linear(c.hidden, PIXELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits ``[N, 1, 28, 28]``."""
        check_images(x)
        return self.decoder(self.encoder(x)).view(-1, *IMAGE_SHAPE)


@torch.no_grad()
def init_pixel_bias(model: LatentModel, images: torch.Tensor, eps: float = 1e-3) -> None:
    """Start the decoder at the mean image: ``pixel_bias`` = log-odds of each pixel's mean grey level.

    An untrained decoder otherwise outputs about 0.5 everywhere (543 nats per image); from the mean
    image the first updates go into shapes instead of into learning that the background is black.
    """
    check_images(images)
    mean = images.float().mean(0).clamp(eps, 1 - eps).to(model.pixel_bias.device)
    model.pixel_bias.copy_(torch.log(mean) - torch.log1p(-mean))


# --- the ELBO (section 1) ---------------------------------------------------------------------------


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``z = mu + sigma * eps`` with ``eps ~ N(0, I)`` and ``sigma = exp(logvar / 2)``.

    The randomness is in ``eps``, which does not depend on the parameters, so gradients flow to
    ``mu`` and ``logvar`` through an ordinary expression. ``eps`` is drawn from ``generator`` (on
    its own device, e.g. a CPU generator) and moved to ``mu``'s device.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if generator is None:
        eps = torch.randn_like(mu)
    else:
        eps = torch.randn(mu.shape, generator=generator, device=generator.device, dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""``[N, d]``: KL(N(mu, sigma^2) || N(0, 1)) for every dimension, in closed form.

    $\mathrm{KL} = \tfrac12 (\mu^2 + \sigma^2 - 1 - \log \sigma^2)$; the sum over dimensions is
    the KL of the diagonal Gaussian q(z|x) from the prior N(0, I).
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``[N]``: -log p(x|z) of a Bernoulli per pixel, **summed** over the pixels of each image (nats).

    With grey levels in [0, 1] as targets this is the binary cross-entropy the classic recipe
    uses; it is not a normalised density of grey levels (notebook 03, section 1).
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and images {tuple(x.shape)} must have the same shape")
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def vae_loss(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
    beta: float = 1.0, free_bits: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, recon, kl)``: the negative ELBO per image, **averaged over the batch** (scalars).

    ``recon`` is :func:`bernoulli_nll` (summed over pixels), ``kl`` the closed-form KL summed over
    the latent dimensions; ``loss = recon + beta * kl`` (beta = 1: the ELBO; beta != 1: the
    beta-VAE). With ``free_bits`` > 0 each dimension's batch-mean KL counts at least that many
    nats in the loss (the free bits of Kingma et al. 2016, whose budget is per group of dimensions; here
    every group is one dimension), which stops the optimiser from switching dimensions off;
    the returned ``kl`` is always the true one.
    """
    if beta < 0 or free_bits < 0:
        raise ValueError(f"beta and free_bits must be >= 0, got {beta} and {free_bits}")
    recon = bernoulli_nll(logits, x).mean()
    kl_dims = gaussian_kl(mu, logvar).mean(0)  # [d], averaged over the batch
    kl = kl_dims.sum()
    kl_term = kl_dims.clamp(min=free_bits).sum() if free_bits > 0 else kl
    return recon + beta * kl_term, recon, kl


def vae_step(
    model: LatentModel, opt: torch.optim.Optimizer, x: torch.Tensor, beta: float = 1.0, free_bits: float = 0.0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One gradient step on a batch: returns the batch's ``loss``, ``recon`` and ``kl`` (nats per image)."""
    logits, mu, logvar = model(x, generator)
    loss, recon, kl = vae_loss(logits, x, mu, logvar, beta, free_bits)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}


# --- evaluation (sections 2-4) ---------------------------------------------------------------------------


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def elbo_parts(
    model: LatentModel, images: torch.Tensor, seed: int = ELBO_SEED, batch_size: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(recon [N], kl [N, d])`` of every image, in eval mode, one z per image.

    The noise is drawn on the CPU from ``seed`` for all images at once, so the numbers are the
    same on every device and for every ``batch_size`` (up to float rounding).
    """
    check_images(images)
    device = _device(model)
    eps = torch.randn(len(images), model.latent_dim, generator=torch.Generator().manual_seed(seed))
    recon, kl = [], []
    with evaluating(model):
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            mu, logvar = model.encode(x)
            z = mu + torch.exp(0.5 * logvar) * eps[start:start + batch_size].to(device)
            recon.append(bernoulli_nll(model.decode(z), x).float().cpu())
            kl.append(gaussian_kl(mu, logvar).float().cpu())
    return torch.cat(recon), torch.cat(kl)


def evaluate(model: LatentModel, images: torch.Tensor, seed: int = ELBO_SEED) -> dict[str, float]:
    """Mean ``neg_elbo``, ``recon`` and ``kl`` over ``images`` (nats per image): the test -ELBO."""
    recon, kl = elbo_parts(model, images, seed)
    kl = kl.sum(1)
    return {"neg_elbo": (recon + kl).mean().item(), "recon": recon.mean().item(), "kl": kl.mean().item()}


def encode_means(model: LatentModel, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``[N, d]``: the posterior means mu(x) (the codes scattered and compared in sections 3 and 4)."""
    check_images(images)
    device = _device(model)
    with evaluating(model):
        return torch.cat([model.encode(images[s:s + batch_size].to(device))[0].float().cpu()
                          for s in range(0, len(images), batch_size)])


def decode_probs(model: LatentModel, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``[N, 1, 28, 28]`` on the CPU: sigmoid of the decoder's logits, the mean image of p(x|z)."""
    device = _device(model)
    with evaluating(model):
        return torch.cat([torch.sigmoid(model.decode(z[s:s + batch_size].to(device))).float().cpu()
                          for s in range(0, len(z), batch_size)])


def sample(model: LatentModel, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` images from the prior: z ~ N(0, I) (drawn on the CPU), decoded to pixel means in [0, 1]."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return decode_probs(model, torch.randn(n, model.latent_dim, generator=generator))


def reconstruct(model: LatentModel, images: torch.Tensor) -> torch.Tensor:
    """Decode the posterior means: the deterministic reconstruction (pixel means in [0, 1])."""
    return decode_probs(model, encode_means(model, images))


def interpolate(model: LatentModel, a: torch.Tensor, b: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """``[steps, 1, 28, 28]``: decode points on the straight line from mu(a) to mu(b) (two single images)."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    ends = encode_means(model, torch.stack([a.reshape(IMAGE_SHAPE), b.reshape(IMAGE_SHAPE)]))
    t = torch.linspace(0, 1, steps)[:, None]
    return decode_probs(model, (1 - t) * ends[0] + t * ends[1])


def kl_per_dim(model: LatentModel, images: torch.Tensor) -> torch.Tensor:
    """``[d]``: the mean KL of each latent dimension over ``images`` (nats); ~0 means the dimension is unused."""
    return elbo_parts(model, images)[1].mean(0)


def active_units(model: LatentModel, images: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """Burda et al. (2016)'s count: a dimension u is active if Var_x(E_q[z_u | x]) > ``threshold``.

    Returns the count and the ``[d]`` variances. A collapsed dimension has q(z_u|x) = N(0, 1) for
    every x: its mean does not move with the input, so its variance over the data is ~0.
    """
    variances = encode_means(model, images).var(0)
    return int((variances > threshold).sum()), variances


def log_importance_weights(
    model: LatentModel, images: torch.Tensor, k: int, seed: int = ELBO_SEED, batch_size: int | None = None,
) -> torch.Tensor:
    """``[N, k]``: ``log w = log p(x|z) + log p(z) - log q(z|x)`` for ``k`` codes z ~ q(z|x) of each image (nats).

    The mean of ``w`` over z ~ q(z|x) is p(x) exactly, so the weights estimate the likelihood
    (:func:`importance_weighted_bound`). The noise is drawn on the CPU from ``seed`` as one
    ``[N, k, latent_dim]`` tensor (mind its size), so the numbers do not depend on ``batch_size``
    (images per forward pass; by default about 2,000 decoded codes per pass, which keeps the peak memory
    small) or on the device.
    """
    check_images(images)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    device = _device(model)
    eps = torch.randn(len(images), k, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    batch_size = batch_size or max(1, 2_000 // k)
    log_2pi = math.log(2 * math.pi)
    out = []
    with evaluating(model):
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            e = eps[start:start + batch_size].to(device)  # [B, k, d]
            mu, logvar = model.encode(x)
            z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * e
            log_px_z = -bernoulli_nll(model.decode(z.flatten(0, 1)), x.repeat_interleave(k, 0)).view(len(x), k)
            log_pz = -0.5 * (z.pow(2) + log_2pi).sum(-1)
            log_qz = -0.5 * (e.pow(2) + logvar[:, None] + log_2pi).sum(-1)  # N(z; mu, sigma^2) at z = mu + sigma eps
            out.append((log_px_z + log_pz - log_qz).float().cpu())
    return torch.cat(out)


def importance_weighted_bound(
    model: LatentModel, images: torch.Tensor, k: int, seed: int = ELBO_SEED, batch_size: int | None = None,
) -> torch.Tensor:
    r"""``[N]``: the importance-weighted estimate $\log \hat p_k(x) = \log \frac1k \sum_j w_j$ of each image (nats).

    Burda et al. (2016): its expectation is a lower bound on log p(x) that rises with ``k``
    (``k = 1``: the ELBO) and reaches log p(x) as ``k`` grows. The weights are
    :func:`log_importance_weights`, averaged in log space (``logsumexp``) for stability.
    """
    return torch.logsumexp(log_importance_weights(model, images, k, seed, batch_size), dim=1) - math.log(k)


# --- training (sections 1-3) ------------------------------------------------------------------------------


def scheduled_lr(step: int, total: int, lr: float, schedule: str) -> float:
    """The learning rate of step ``step`` (0-based) of ``total``: ``constant``, or ``cosine_tail``.

    ``cosine_tail`` holds ``lr`` for the first half of training, then follows a
    cosine down to 0: the shared :func:`course_utils.training.lr_at` with no
    warm-up and the last half of the steps as its decay, counted in half steps
    so that the decay starts at the exact middle of an odd number of steps.
    """
    if schedule == "constant":
        return lr
    if schedule == "cosine_tail":
        return lr_at(2 * step, lr=lr, min_lr=0.0, warmup=0, steps=2 * total, decay_steps=total)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; use 'constant' or 'cosine_tail'")


def fit_vae(
    model: LatentModel, images: torch.Tensor, epochs: float = 1, *, batch_size: int = 128, lr: float = 1e-3,
    seed: int = 0, beta: float = 1.0, warmup_steps: int = 0, free_bits: float = 0.0, schedule: str = "constant",
    test_images: torch.Tensor | None = None, evals_per_epoch: int = 1, target: float | None = None,
    max_minutes: float | None = None, desc: str = "VAE", log: bool = False,
) -> dict[str, Any]:
    """Train ``model`` on ``images`` with Adam, one z per image; return the history.

    ``epochs`` may be fractional (e.g. 0.5: half an epoch of updates). ``warmup_steps`` > 0 is KL
    warm-up: the KL weight grows linearly from 0 to ``beta`` over that many steps. With
    ``test_images`` the test -ELBO (:func:`evaluate`) is measured ``evals_per_epoch`` times per
    epoch and at the end; with ``target`` training stops at the first evaluation at or below it
    (the history's ``reached`` gives its seconds and epochs, evaluations included). With ``log``
    each evaluation is also printed (above the progress bar).

    The history holds, per step, the batch's ``recon`` and ``kl``; per evaluation, ``eval``
    (``epoch``, ``neg_elbo``, ``recon``, ``kl``, ``seconds``); and ``seconds``, ``steps``, ``epochs``.
    """
    if epochs <= 0 or batch_size < 1 or lr <= 0 or warmup_steps < 0 or evals_per_epoch < 0:
        raise ValueError("need epochs > 0, batch_size >= 1, lr > 0, warmup_steps >= 0 and evals_per_epoch >= 0")
    if target is not None and test_images is None:
        raise ValueError("a target needs test_images to be evaluated on")
    check_images(images)
    device = _device(model)
    rng = seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    per_epoch = -(-len(images) // batch_size)
    total = max(1, round(epochs * per_epoch))
    every = max(1, per_epoch // evals_per_epoch) if evals_per_epoch else 0
    history: dict[str, Any] = {"recon": [], "kl": [], "eval": {k: [] for k in
                                                               ("epoch", "neg_elbo", "recon", "kl", "seconds")},
                               "reached": None}
    budget, bar, step, start = TimeBudget(max_minutes), progress(total=total, desc=desc), 0, time.perf_counter()
    evaluated_at = -1

    def measure() -> None:
        nonlocal evaluated_at
        stats, evaluated_at = evaluate(model, test_images), step
        history["eval"]["epoch"].append(round(step / per_epoch, 3))
        history["eval"]["seconds"].append(round(time.perf_counter() - start, 2))
        for k in ("neg_elbo", "recon", "kl"):
            history["eval"][k].append(round(stats[k], 3))
        if target is not None and stats["neg_elbo"] <= target and history["reached"] is None:
            history["reached"] = {"seconds": history["eval"]["seconds"][-1], "epoch": history["eval"]["epoch"][-1]}
        if log:
            bar.write(f"epoch {step / per_epoch:.2f}: test -ELBO {stats['neg_elbo']:.2f} (recon {stats['recon']:.2f}, "
                f"KL {stats['kl']:.2f}), {history['eval']['seconds'][-1]:.0f} s")

    model.train()
    stop = False
    while not stop:
        for (x,) in tensor_batches(images, batch_size=batch_size, generator=rng):
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(step, total, lr, schedule)
            warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
            stats = vae_step(model, opt, x.to(device), beta * warm, free_bits)
            history["recon"].append(stats["recon"])
            history["kl"].append(stats["kl"])
            step += 1
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{stats['loss']:.1f}")
            if test_images is not None and every and step % every == 0:
                measure()
            stop = step == total or history["reached"] is not None or (budget.spent() and step % per_epoch == 0)
            if stop:
                break
    bar.close()
    if test_images is not None and evaluated_at != step:
        measure()
    history.update(seconds=round(time.perf_counter() - start, 2), steps=step, epochs=round(step / per_epoch, 3))
    model.eval()
    return history


# --- the recipes (sections 1 and 2) and the shipped VAE (section 6) ------------------------------


@dataclass(frozen=True)
class VAERecipe:
    """How a VAE is trained: which model and its sizes, the data, Adam's rate and schedule, the epochs."""

    model: str = "conv"  # "mlp" (MLPVAE, section 1) or "conv" (ConvVAE, section 2 and the shipped VAE)
    latent_dim: int = 32
    hidden: int = 128
    channels: tuple[int, int] = (32, 64)  # conv only
    batch_size: int = 128
    lr: float = 2e-3
    schedule: str = "cosine_tail"  # see fit_vae
    epochs: float = 30
    images: int | None = None  # training images (None: all 60,000)
    evals_per_epoch: int = 1  # test -ELBO measurements per epoch (the curve)
    pixel_bias: bool = False  # start the decoder at the mean image (init_pixel_bias)

    def __post_init__(self) -> None:
        if self.model not in ("mlp", "conv"):
            raise ValueError(f"VAERecipe.model must be 'mlp' or 'conv', got {self.model!r}")
        require_positive(self, "latent_dim", "hidden", "batch_size", "evals_per_epoch")
        if not self.epochs > 0 or not self.lr > 0:
            raise ValueError(f"VAERecipe needs epochs > 0 and lr > 0, got {self.epochs!r} and {self.lr!r}")

    def make_model(self, images: torch.Tensor | None = None) -> LatentModel:
        """A fresh model of this recipe (seed first); with ``pixel_bias``, its pixel biases set from ``images``."""
        if self.model == "mlp":
            model: LatentModel = MLPVAE(latent_dim=self.latent_dim, hidden=self.hidden)
        else:
            model = ConvVAE(latent_dim=self.latent_dim, channels=tuple(self.channels), hidden=self.hidden)
        if self.pixel_bias:
            if images is None:
                raise ValueError("this recipe starts the pixel biases at the mean image: pass the training images")
            init_pixel_bias(model, images)
        return model

    def describe(self) -> str:
        """One line for a notebook's parameters cell."""
        data = f"{self.images:,}" if self.images else "all 60,000"
        size = f"channels {self.channels}, " if self.model == "conv" else ""
        return (f"{self.model} VAE ({size}hidden {self.hidden}, latent {self.latent_dim}), {self.epochs:g} epoch(s) "
                f"on {data} images, batch {self.batch_size}, Adam {self.lr:g} ({self.schedule})")


#: Section 1's MLP VAE, the course's fast recipe (``train vae --bench`` times it against the PyTorch example's):
#: 784-256-20, pixel biases at the data's log-odds, Adam 5e-3 constant, batch 128. Its epochs vary by use.
FAST_RECIPE = VAERecipe(model="mlp", latent_dim=20, hidden=256, lr=5e-3, schedule="constant", epochs=2,
                        pixel_bias=True)
#: The convolutional VAE: ``ci``/``cpu``/``gpu`` are what notebook 03 trains in section 2, ``ship`` the shipped one.
#: Its pixel biases start at 0: started at the mean image, this model's KL falls instead of rising over its first
#: 20 steps, and over 150 steps seed 0's stays near 0 while seeds 1 and 2 pass 1 nat at steps 74 and 62 (the slow
#: test ``test_conv_vae_kl_dips_when_its_pixel_biases_start_at_the_mean_image``); the MLP VAEs of section 1 train
#: faster with it.
RECIPES: dict[str, VAERecipe] = {
    "ci": VAERecipe(epochs=1, images=3_200, evals_per_epoch=3),
    "cpu": VAERecipe(epochs=3, evals_per_epoch=2),
    "gpu": VAERecipe(epochs=30),
    "ship": VAERecipe(epochs=30),
    "test": VAERecipe(latent_dim=4, hidden=16, channels=(4, 8), batch_size=32, epochs=1),
}


def fit_recipe(
    recipe: str | VAERecipe, images: torch.Tensor, test_images: torch.Tensor | None = None, seed: int = 0,
    device: torch.device | str | None = None, desc: str | None = None, **overrides: Any,
) -> tuple[LatentModel, dict[str, Any]]:
    """A model of ``recipe`` (a name of :data:`RECIPES` or a :class:`VAERecipe`) trained by :func:`fit_vae`.

    ``overrides`` replace the recipe's fields (``epochs=4``); keyword arguments of :func:`fit_vae`
    that a recipe does not hold (``target``, ``max_minutes``, ``beta``...) go in ``fit``.
    """
    fit = overrides.pop("fit", {})
    r = choose_recipe(RECIPES, recipe, **overrides)
    images = images[:r.images] if r.images else images
    seed_everything(seed)
    model = r.make_model(images).to(device or get_device())
    history = fit_vae(model, images, r.epochs, batch_size=r.batch_size, lr=r.lr, seed=seed, schedule=r.schedule,
                      test_images=test_images, evals_per_epoch=r.evals_per_epoch if test_images is not None else 0,
                      desc=desc or f"{r.model} VAE", **fit)
    return model, history


def train_vae(
    out: Path, recipe: str | VAERecipe = "ship", epochs: int | None = None, seed: int = 0, limit: int | None = None,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """Train the shipped convolutional VAE on Fashion-MNIST and write it to ``out``; return the card.

    ``recipe`` is a name of :data:`RECIPES` or a :class:`VAERecipe`; ``epochs`` replaces its epochs.
    The test -ELBO is measured on the 10,000 test images after every epoch (the card's curve) with
    the noise seed :data:`ELBO_SEED`. With ``max_minutes`` training stops at the end of the first
    epoch past that time (the learning-rate schedule still assumes the recipe's epochs).
    """
    out = Path(out)
    r = choose_recipe(RECIPES, recipe, **({"epochs": epochs} if epochs else {}))
    x_train, _ = image_tensors("fashion-mnist", train=True)
    x_test, _ = image_tensors("fashion-mnist", train=False)
    if limit:
        x_train, x_test = x_train[:limit], x_test[:limit]
    model, history = fit_recipe(r, x_train, x_test, seed=seed, desc=f"{r.model} VAE",
                                fit={"max_minutes": max_minutes, "log": True})
    final = evaluate(model, x_test)
    epochs_done = round(history["epochs"], 3)
    per_epoch = -(-min(len(x_train), r.images or len(x_train)) // r.batch_size)
    train_curve = {k: [round(float(np.mean(history[k][i:i + per_epoch])), 3)
                       for i in range(0, len(history[k]), per_epoch)] for k in ("recon", "kl")}
    card = {
        "task": "convolutional VAE for Fashion-MNIST (notebook 03)",
        "data": f"Fashion-MNIST train ({min(len(x_train), r.images or len(x_train)):,} images), grey levels in "
                "[0, 1] as Bernoulli targets",
        "training": {
            "epochs": epochs_done, "steps": history["steps"], "batch_size": r.batch_size, "seed": seed,
            "recipe": asdict(r),
            "optimizer": f"Adam lr {r.lr}, {r.schedule} schedule over {r.epochs:g} epochs",
            "loss": "negative ELBO: binary cross-entropy summed over the 784 pixels + closed-form KL, "
                    "averaged over the batch; one z per image",
        },
        **training_time(history["seconds"], epochs_done, model.pixel_bias.device),
        "test_neg_elbo": {"value": round(final["neg_elbo"], 3), "recon": round(final["recon"], 3),
                          "kl": round(final["kl"], 3), "images": len(x_test), "noise_seed": ELBO_SEED,
                          "units": "nats per image"},
        "curve": {k: history["eval"][k] for k in ("epoch", "neg_elbo", "recon", "kl")},
        "train_curve": train_curve,
        "command": repeat_command("vae", recipe, epochs_done, seed),
    }
    summary = (f"conv VAE: test -ELBO {final['neg_elbo']:.2f} nats (recon {final['recon']:.2f}, KL {final['kl']:.2f}) "
               f"after {epochs_done:g} epochs, {history['seconds']:.0f} s")
    return finish_run(model, out / VAE_NAME, card, summary)
