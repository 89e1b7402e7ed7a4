"""Diffusion models: the noise schedule, the denoisers, and the DDPM and DDIM samplers with guidance.

Taught in notebook 04 (the model side only; training is in :mod:`course_utils.diffusion_training`):

- section 1, the forward process: :class:`Schedule` (:func:`make_schedule`, linear or cosine betas),
  :func:`q_sample` (the closed form of q(x_t | x_0)) and :meth:`Schedule.snr`;
- section 2, the denoiser: :class:`UNet` (down and up blocks with skips, a sinusoidal
  :func:`timestep_embedding`, a class embedding with a "null" class), :func:`receptive_field`;
- section 4, sampling: :func:`predict_x0`, :func:`ddpm_step`, :func:`ddim_step`, :func:`sampling_timesteps`
  and :func:`sample` (noise drawn on the CPU from a seed: the same images on every device);
- section 5, classifier-free guidance: :func:`guided_eps` and the ``guidance`` of :func:`sample`;
- section 6, latent diffusion: :class:`LatentDenoiser`, an MLP on the shipped VAE's 32-d codes.

Images are ``[N, 1, 28, 28]`` in [-1, 1]. A timestep ``t`` runs from 0 (clean) to ``T - 1`` (noise);
``alpha_bar[t]`` is the signal kept after step ``t``: ``x_t = sqrt(alpha_bar[t]) x_0 + sqrt(1 - alpha_bar[t]) eps``.
The schedule is kept in float64; each step computes its coefficients in float64 and applies them in the
tensors' own dtype.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.checkpoints import register_model
from course_utils.configs import make_config, require_positive
from course_utils.training import evaluating

IMAGE_SHAPE = (1, 28, 28)
SCHEDULES = ("linear", "cosine")
COSINE_OFFSET = 0.008  # Nichol & Dhariwal's s: keeps beta_1 from being tiny
MAX_BETA = 0.999  # Nichol & Dhariwal clip the cosine schedule's betas here (the last ones go to 1)


# --- section 1: the forward process ----------------------------------------------------------------------------


class Schedule:
    """The noise schedule of a diffusion model: ``betas`` ``[T]`` and what follows from them, in float64.

    ``alphas = 1 - betas``; ``alpha_bar[t] = prod_{s <= t} alphas[s]``, the share of the signal's variance that
    survives ``t + 1`` steps of noising (notebook 04, section 1).
    """

    def __init__(self, betas: torch.Tensor, kind: str = "custom") -> None:
        betas = torch.as_tensor(betas, dtype=torch.float64).cpu()
        if betas.ndim != 1 or len(betas) < 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a non-empty vector of values in (0, 1)")
        self.kind = kind
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)

    @property
    def T(self) -> int:  # noqa: N802 (the papers' name)
        return len(self.betas)

    def snr(self) -> torch.Tensor:
        """``[T]``: the signal-to-noise ratio of each step, ``alpha_bar / (1 - alpha_bar)``."""
        return self.alpha_bar / (1.0 - self.alpha_bar)

    def alpha_bar_at(self, t: int | torch.Tensor) -> torch.Tensor:
        """``alpha_bar[t]``, with ``t = -1`` meaning "before any noise" (1.0): where the last step lands."""
        t = torch.as_tensor(t)
        return torch.where(t >= 0, self.alpha_bar[t.clamp(min=0)], torch.ones((), dtype=torch.float64))

    def __repr__(self) -> str:
        return f"Schedule({self.kind}, T={self.T})"


def make_schedule(kind: str = "cosine", T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:  # noqa: N803
    """A ``"linear"`` schedule (Ho et al. 2020: betas from 1e-4 to 0.02) or a ``"cosine"`` one (Nichol & Dhariwal).

    The cosine schedule defines ``alpha_bar(t) = f(t) / f(0)`` with ``f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2)``
    and ``s = 0.008``; each beta is ``1 - alpha_bar(t + 1) / alpha_bar(t)``, clipped at 0.999. It destroys the
    signal more slowly at the start than the linear one, which matters for small images (section 1).
    ``linear`` with T = 1000 is diffusers' ``"linear"``, ``cosine`` its ``"squaredcos_cap_v2"``.
    """
    if not isinstance(T, int) or isinstance(T, bool) or T < 2:
        raise ValueError(f"T must be an int >= 2, got {T!r}")
    if kind == "linear":
        return Schedule(torch.linspace(beta_start, beta_end, T, dtype=torch.float64), "linear")
    if kind == "cosine":
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
        return Schedule((1 - f[1:] / f[:-1]).clamp(max=MAX_BETA), "cosine")
    raise ValueError(f"unknown schedule {kind!r}; use one of {', '.join(SCHEDULES)}")


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``[N]`` float64 values as ``[N, 1, 1, ...]`` in ``like``'s dtype and device, to scale a batch."""
    return values.to(like.dtype).to(like.device).view(-1, *([1] * (like.ndim - 1)))


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """``x_t = sqrt(alpha_bar[t]) x_0 + sqrt(1 - alpha_bar[t]) noise``: t steps of noising in one (section 1).

    ``t`` holds one timestep per row of ``x0`` (``[N]`` ints in ``[0, T)``); ``noise`` is standard normal.
    """
    t = torch.as_tensor(t, dtype=torch.long).cpu()
    if t.ndim != 1 or len(t) != len(x0) or x0.shape != noise.shape:
        raise ValueError(f"need x0 and noise of one shape and one t per row: x0 {tuple(x0.shape)}, "
                         f"noise {tuple(noise.shape)}, t {tuple(t.shape)}")
    if (t < 0).any() or (t >= schedule.T).any():
        raise ValueError(f"timesteps must be in [0, {schedule.T}), got {t.min().item()}..{t.max().item()}")
    ab = schedule.alpha_bar[t]
    return _per_sample(ab.sqrt(), x0) * x0 + _per_sample((1 - ab).sqrt(), x0) * noise


# --- section 2: the denoiser -------------------------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """``[N, dim]``: the sinusoidal embedding of timesteps (Vaswani et al. 2017, as in Ho et al.'s U-Net).

    Half the entries are ``sin(t * w_k)``, half ``cos(t * w_k)``, with frequencies ``w_k`` spaced
    geometrically from 1 down to ``1 / max_period``: nearby timesteps get similar vectors, far ones different.
    """
    if dim % 2:
        raise ValueError(f"the embedding dimension must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


@dataclass(frozen=True)
class UNetConfig:
    """A small U-Net for 28x28 grey images (notebook 04, section 2).

    ``channels`` are the widths of the levels, one per resolution (28, 14, 7 for three levels);
    ``blocks`` residual blocks per level on the way down and up. ``num_classes`` > 0 adds a class
    embedding with one extra "null" class (index ``num_classes``): the unconditional model of
    classifier-free guidance. ``schedule`` and ``T`` are the noise schedule the model is trained with:
    they travel with the weights, so a checkpoint samples with its own schedule.
    """

    channels: tuple[int, ...] = (32, 64, 128)
    blocks: int = 1
    time_dim: int = 128
    num_classes: int = 10
    schedule: str = "cosine"
    T: int = 1000  # noqa: N815 (the papers' name)

    def __post_init__(self) -> None:
        require_positive(self, "blocks", "time_dim", "num_classes", "T", allow_zero=("num_classes",))
        if not 1 <= len(self.channels) <= 3 or any(isinstance(c, bool) or not isinstance(c, int) or c < 8 or c % 8
                                                   for c in self.channels):
            raise ValueError(f"UNetConfig.channels must be 1 to 3 multiples of 8, got {self.channels!r}")
        if self.time_dim % 2:
            raise ValueError(f"UNetConfig.time_dim must be even, got {self.time_dim}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"UNetConfig.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")


class ResBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv; the time-and-class embedding added per channel; again; plus a skip path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(8, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]  # where the network learns which noise level (and class) it sees
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


@register_model
class UNet(nn.Module):
    """A class-conditional U-Net that predicts the noise ``eps`` in ``x_t`` (section 2).

    Down: a 3x3 stem, then per level ``blocks`` :class:`ResBlock` s and a stride-2 conv (28 -> 14 -> 7).
    Middle: two blocks at the lowest resolution. Up: per level, the skip of the same level concatenated,
    ``blocks`` blocks, then nearest-neighbour upsampling and a conv. The timestep's sinusoidal embedding
    goes through a 2-layer MLP; the class embedding (``labels``, or the null class) is added to it, and the
    sum reaches every block. The last conv starts at zero, so an untrained model predicts eps = 0.
    """

    def __init__(self, config: UNetConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(UNetConfig, config, overrides)
        emb = 4 * c.time_dim
        self.time_mlp = nn.Sequential(nn.Linear(c.time_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.class_embed = nn.Embedding(c.num_classes + 1, emb) if c.num_classes else None
        self.stem = nn.Conv2d(1, c.channels[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        prev = c.channels[0]
        for i, width in enumerate(c.channels):
            self.down.append(nn.ModuleList([ResBlock(prev if b == 0 else width, width, emb) for b in range(c.blocks)]))
            prev = width
            last = i == len(c.channels) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(width, width, 3, stride=2, padding=1))
        self.mid = nn.ModuleList([ResBlock(prev, prev, emb), ResBlock(prev, prev, emb)])
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, width in reversed(list(enumerate(c.channels))):
            self.up.append(nn.ModuleList([ResBlock((prev + width) if b == 0 else width, width, emb)
                                          for b in range(c.blocks)]))
            prev = width
            self.upsample.append(nn.Identity() if i == 0 else nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, c.channels[i - 1], 3, padding=1)))
            prev = width if i == 0 else c.channels[i - 1]
        self.out_norm = nn.GroupNorm(8, c.channels[0])
        self.out = nn.Conv2d(c.channels[0], 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def null_class(self) -> int:
        """The label index of "no label": the unconditional model of classifier-free guidance."""
        return self.config.num_classes

    def embed(self, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``[N, 4 * time_dim]``: the time MLP's output plus the class embedding (the null class for None)."""
        emb = self.time_mlp(timestep_embedding(t, self.config.time_dim))
        if self.class_embed is not None:
            if labels is None:
                labels = torch.full((len(t),), self.null_class, dtype=torch.long, device=t.device)
            emb = emb + self.class_embed(labels)
        elif labels is not None:
            raise ValueError("this U-Net is unconditional (num_classes=0): do not pass labels")
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted noise ``[N, 1, 28, 28]`` for images ``x_t``, timesteps ``t`` ``[N]`` and class ``labels``."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"x must be [N, 1, H, W] with H and W multiples of 4, got {tuple(x.shape)}")
        t = torch.as_tensor(t, device=x.device)
        t = t.expand(len(x)) if t.ndim == 0 else t
        emb = self.embed(t, labels)
        h, skips = self.stem(x), []
        for blocks, down in zip(self.down, self.downsample, strict=True):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, emb)
        for blocks, up in zip(self.up, self.upsample, strict=True):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
            h = up(h)
        return self.out(F.silu(self.out_norm(h)))


def receptive_field(model: nn.Module, size: int = 28) -> tuple[int, int]:
    """``(rows, cols)`` of input pixels the convolutions let reach the centre output pixel: measured by a gradient.

    The gradient of the centre output with respect to the input is nonzero exactly where the input can
    influence it. A copy of the model is probed, its all-zero weights (a fresh U-Net's output layer) refilled
    at random so that no path is cut, and its GroupNorms removed: their mean and variance are taken over the
    whole image, so with them every output pixel depends a little on every input pixel. The bounding box of
    the pixels reached is the field of the convolutions.
    """
    probe = copy.deepcopy(model).eval()
    for name, module in list(probe.named_modules()):
        if isinstance(module, nn.GroupNorm):
            parent, _, attr = name.rpartition(".")
            setattr(probe.get_submodule(parent) if parent else probe, attr, nn.Identity())
    with torch.no_grad():
        for p in probe.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.1)
    device = next(probe.parameters()).device
    x = torch.randn(1, 1, size, size, device=device, requires_grad=True)
    out = probe(x, torch.tensor([500], device=device))
    out[0, 0, size // 2, size // 2].backward()
    rows, cols = torch.nonzero(x.grad[0, 0].abs() > 0, as_tuple=True)
    if len(rows) == 0:
        return 0, 0
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


# --- section 6: a denoiser for latent codes --------------------------------------------------------------------


@dataclass(frozen=True)
class LatentConfig:
    """An MLP denoiser for ``latent_dim``-d codes (section 6): ``depth`` residual layers of ``hidden`` units."""

    latent_dim: int = 32
    hidden: int = 256
    depth: int = 3
    time_dim: int = 64
    num_classes: int = 10
    schedule: str = "cosine"
    T: int = 1000  # noqa: N815

    def __post_init__(self) -> None:
        require_positive(self, "latent_dim", "hidden", "depth", "time_dim", "num_classes", "T",
                         allow_zero=("num_classes",))
        if self.time_dim % 2 or self.schedule not in SCHEDULES:
            raise ValueError(f"LatentConfig needs an even time_dim and a schedule in {SCHEDULES}, "
                             f"got {self.time_dim} and {self.schedule!r}")


@register_model
class LatentDenoiser(nn.Module):
    """Predicts the noise in a noisy latent code (section 6): Stable Diffusion's design, in miniature.

    The codes are standardised first: ``shift`` and ``scale`` (buffers, saved with the weights) map the
    VAE's codes to mean 0 and standard deviation 1 per dimension, the scale the noise schedule assumes; ``low``
    and ``high`` hold the standardised codes' range, to which the sampler clamps its predicted codes, as it
    clamps predicted images to [-1, 1].
    """

    def __init__(self, config: LatentConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(LatentConfig, config, overrides)
        self.register_buffer("shift", torch.zeros(c.latent_dim))
        self.register_buffer("scale", torch.ones(c.latent_dim))
        self.register_buffer("low", torch.full((c.latent_dim,), -4.0))  # the standardised codes' range, per
        self.register_buffer("high", torch.full((c.latent_dim,), 4.0))  # dimension: what the sampler clamps to
        self.time_mlp = nn.Sequential(nn.Linear(c.time_dim, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.class_embed = nn.Embedding(c.num_classes + 1, c.hidden) if c.num_classes else None
        self.inp = nn.Linear(c.latent_dim, c.hidden)
        self.layers = nn.ModuleList([nn.Sequential(nn.LayerNorm(c.hidden), nn.Linear(c.hidden, 2 * c.hidden),
                                                   nn.SiLU(), nn.Linear(2 * c.hidden, c.hidden))
                                     for _ in range(c.depth)])
        self.out = nn.Sequential(nn.LayerNorm(c.hidden), nn.Linear(c.hidden, c.latent_dim))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    @property
    def null_class(self) -> int:
        return self.config.num_classes

    def standardise(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes - self.shift) / self.scale

    def unstandardise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale + self.shift

    @property
    def data_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, high)``: the standardised training codes' range per dimension, the ``clip`` of :func:`sample`."""
        return self.low, self.high

    def forward(self, z: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted noise ``[N, latent_dim]`` in standardised noisy codes ``z``."""
        t = torch.as_tensor(t, device=z.device)
        t = t.expand(len(z)) if t.ndim == 0 else t
        h = self.inp(z) + self.time_mlp(timestep_embedding(t, self.config.time_dim))
        if self.class_embed is not None:
            if labels is None:
                labels = torch.full((len(z),), self.null_class, dtype=torch.long, device=z.device)
            h = h + self.class_embed(labels)
        for layer in self.layers:
            h = h + layer(h)
        return self.out(h)


# --- section 4: the reverse process ----------------------------------------------------------------------------


def sampling_timesteps(T: int, steps: int) -> list[int]:  # noqa: N803
    """The ``steps`` timesteps a sampler visits, from ``T - 1`` down: evenly spaced, the last one ``T / steps - 1``.

    The "trailing" spacing of diffusers (Lin et al. 2024): the first step starts from pure noise at
    ``t = T - 1``. ``steps`` must divide ``T`` (so that diffusers' DDIM step takes the same steps).
    """
    if not isinstance(steps, int) or not 1 <= steps <= T or T % steps:
        raise ValueError(f"steps must be a divisor of T = {T} (e.g. 10, 20, 50, 100, 250), got {steps!r}")
    stride = T // steps
    return list(range(T - 1, -1, -stride))


Clip = bool | tuple[torch.Tensor, torch.Tensor]  # False, True: [-1, 1], or (low, high) per element


def predict_x0(eps: torch.Tensor, t: int, x_t: torch.Tensor, schedule: Schedule, clip: Clip = False) -> torch.Tensor:
    """The clean image that ``x_t`` and the predicted noise imply: ``(x_t - sqrt(1 - ab) eps) / sqrt(ab)``.

    ``clip`` clamps it to the range of the data: ``True`` to [-1, 1], the range of images (diffusers'
    ``clip_sample``); a pair ``(low, high)`` of tensors that broadcast against ``x_t`` to that range per element
    (section 6: latent codes, per dimension). Near ``t = T - 1`` the division by ``sqrt(ab)`` (5e-5 for the cosine
    schedule) multiplies any error in ``eps`` 20,000-fold; the clamp is what keeps the first steps in range.
    """
    ab = schedule.alpha_bar_at(t)
    x0 = (x_t - float((1 - ab).sqrt()) * eps) / float(ab.sqrt())
    if clip is False:
        return x0
    if clip is True:
        return x0.clamp(-1, 1)
    low, high = clip
    return x0.clamp(low.to(x0), high.to(x0))


def ddpm_step(
    eps: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor, schedule: Schedule, noise: torch.Tensor | None = None,
    clip: Clip = False,
) -> torch.Tensor:
    """One DDPM reverse step, from ``x_t`` to ``x_{t_prev}`` (Ho et al. 2020, eqs. 6, 7 and 11; section 4).

    The mean of the posterior q(x_{t_prev} | x_t, x_0) with x_0 predicted from ``eps``; the variance is the
    posterior's, ``(1 - ab_prev) / (1 - ab_t) * beta``, with ``beta = 1 - ab_t / ab_prev`` (the beta of this
    stride: ``t_prev = t - 1`` in the full chain). ``noise`` (standard normal, as ``x_t``) is added unless
    ``t_prev < 0``, the last step. Without ``clip`` the mean is ``(x_t - beta / sqrt(1 - ab_t) eps) / sqrt(alpha)``.
    """
    ab_t, ab_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
    alpha = ab_t / ab_prev
    beta = 1 - alpha
    x0 = predict_x0(eps, t, x_t, schedule, clip)
    mean = float(ab_prev.sqrt() * beta / (1 - ab_t)) * x0 + float(alpha.sqrt() * (1 - ab_prev) / (1 - ab_t)) * x_t
    if t_prev < 0:
        return mean
    if noise is None:
        raise ValueError("ddpm_step needs noise for every step but the last")
    variance = (1 - ab_prev) / (1 - ab_t) * beta
    return mean + float(variance.sqrt()) * noise


def ddim_step(
    eps: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor, schedule: Schedule, eta: float = 0.0,
    noise: torch.Tensor | None = None, clip: Clip = False,
) -> torch.Tensor:
    """One DDIM step (Song et al. 2021, eq. 12; section 4): deterministic for ``eta = 0``.

    ``x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) eps + sigma noise``, with x0 predicted from
    ``eps`` and ``sigma = eta * sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))``; ``eta = 1`` has
    DDPM's variance.
    """
    ab_t, ab_prev = schedule.alpha_bar_at(t), schedule.alpha_bar_at(t_prev)
    x0 = predict_x0(eps, t, x_t, schedule, clip)
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).sqrt()
    out = float(ab_prev.sqrt()) * x0 + float((1 - ab_prev - sigma**2).sqrt()) * eps
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        out = out + float(sigma) * noise
    return out


def guided_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022; section 5): ``eps_uncond + scale * (eps_cond - eps_uncond)``.

    ``scale = 1`` is the conditional model alone, ``0`` the unconditional one; above 1 each step moves further
    in the direction that makes the image more like its class (the convention of diffusers' ``guidance_scale``).
    """
    return eps_uncond + scale * (eps_cond - eps_uncond)


def schedule_of(model: nn.Module) -> Schedule:
    """The schedule a model was trained with (its config's ``schedule`` and ``T``)."""
    return make_schedule(model.config.schedule, model.config.T)


def denoise(
    model: nn.Module, x: torch.Tensor, t: int, labels: torch.Tensor | None, guidance: float = 1.0,
) -> torch.Tensor:
    """The model's noise prediction at timestep ``t``, guided: one pass for ``guidance`` 1 or 0 or no labels, else two.

    With labels and any other ``guidance`` the conditional and the unconditional (null-class) predictions come
    from one batch of twice the size and are combined by :func:`guided_eps`. ``guidance`` 0 is the unconditional
    prediction alone (``guided_eps`` of it), so one pass with the null class gives it.
    """
    tt = torch.full((len(x),), t, dtype=torch.long, device=x.device)
    if labels is None or guidance == 1.0:
        return model(x, tt, labels)
    null = torch.full_like(labels, model.null_class)
    if guidance == 0.0:
        return model(x, tt, null)
    both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([labels, null]))
    eps_cond, eps_uncond = both.chunk(2)
    return guided_eps(eps_cond, eps_uncond, guidance)


def sample(
    model: nn.Module, n: int, labels: torch.Tensor | None = None, steps: int = 50, method: str = "ddim",
    guidance: float = 1.0, generator: torch.Generator | None = None, clip: Clip = True, eta: float = 0.0,
    batch_size: int = 500, shape: tuple[int, ...] = IMAGE_SHAPE, progress_bar: Any = None,
) -> torch.Tensor:
    """``n`` samples on the CPU (images in [-1, 1] for the U-Net), made in eval mode, batch by batch (section 4).

    Starts from noise at ``t = T - 1`` and takes ``steps`` steps of ``method`` (``"ddim"`` or ``"ddpm"``) on
    :func:`sampling_timesteps`. The starting noise and every step's noise are drawn on the CPU from
    ``generator``, for all ``n`` samples at once, so a seed gives the same samples on every device and for every
    ``batch_size`` (up to float rounding). ``labels``
    ``[n]`` are the classes asked for (None: unconditional); ``guidance`` is the classifier-free guidance scale.
    ``clip`` clamps each predicted x0 (:func:`predict_x0`): ``True`` to [-1, 1], for images; ``(low, high)`` for
    latent codes (a :class:`LatentDenoiser`'s ``data_range``). ``progress_bar``,
    if given, is updated once per step of each batch.
    """
    if method not in ("ddim", "ddpm"):
        raise ValueError(f"method must be 'ddim' or 'ddpm', got {method!r}")
    if n < 1 or (labels is not None and len(labels) != n):
        raise ValueError(f"need n >= 1 and one label per sample, got n={n} and "
                         f"{None if labels is None else len(labels)} labels")
    schedule = schedule_of(model)
    times = sampling_timesteps(schedule.T, steps)
    device = next(model.parameters()).device
    xs = [x.to(device) for x in torch.randn(n, *shape, generator=generator).split(batch_size)]
    ys = [None] * len(xs) if labels is None else [y.to(device) for y in labels.split(batch_size)]
    with evaluating(model):
        for i, t in enumerate(times):
            t_prev = times[i + 1] if i + 1 < len(times) else -1
            stochastic = method == "ddpm" and t_prev >= 0 or method == "ddim" and eta > 0
            noises = torch.randn(n, *shape, generator=generator).split(batch_size) if stochastic else [None] * len(xs)
            for j, (x, y, noise) in enumerate(zip(xs, ys, noises, strict=True)):
                eps = denoise(model, x, t, y, guidance)
                noise = None if noise is None else noise.to(device)
                if method == "ddpm":
                    xs[j] = ddpm_step(eps, t, t_prev, x, schedule, noise, clip)
                else:
                    xs[j] = ddim_step(eps, t, t_prev, x, schedule, eta, noise, clip)
                if progress_bar is not None:
                    progress_bar.update(1)
    return torch.cat([x.float().cpu() for x in xs])
