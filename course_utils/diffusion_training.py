"""Training diffusion models: the recipes, the loop, the shipped DDPM, and latent diffusion on the VAE's codes.

Taught in notebook 04 (the models and samplers are in :mod:`course_utils.diffusion`):

- section 3, training: :func:`diffusion_loss` (the simple eps-prediction loss, with the label dropped for
  classifier-free guidance), :class:`EMA`, :func:`fit_diffusion`; :class:`DiffusionRecipe` and
  :data:`RECIPES`, the settings of each profile;
- sections 4 and 5: :func:`sample_fid` (FID-FMNIST of seeded, class-balanced samples);
- section 6, latent diffusion: :func:`latent_codes`, :func:`fit_latent` and :func:`latent_images`;
- :func:`train_diffusion`, what ``python -m course_utils.train diffusion`` runs.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import evaluation, reference_stats, vae
from course_utils.checkpoints import SHIPPED_DIR, finish_run, load_checkpoint, num_parameters
from course_utils.classifier import CLASSIFIER_NAME
from course_utils.cli import repeat_command
from course_utils.configs import choose_recipe, require_positive, require_rate
from course_utils.datasets import image_tensors, tensor_batches
from course_utils.diffusion import SCHEDULES, LatentDenoiser, Schedule, UNet, q_sample, sample, schedule_of
from course_utils.gan import balanced_labels
from course_utils.progress import TimeBudget, progress
from course_utils.runtime import get_device, seed_everything, training_time
from course_utils.training import evaluating, lr_at

DDPM_NAME = "ddpm_fmnist"
FID_SEED = 1234  # the noise seed of every FID-FMNIST measurement in a card (as the GAN's)


# --- section 3: the loss and one step ----------------------------------------------------------------------------


def diffusion_loss(
    model: nn.Module, x0: torch.Tensor, labels: torch.Tensor | None, schedule: Schedule, p_uncond: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The simple loss of Ho et al. (2020): ``|| eps - eps_theta(x_t, t, y) ||^2``, averaged (section 3).

    One uniform timestep and one noise draw per image; with ``p_uncond`` > 0 each label is replaced by the
    null class with that probability, so one network learns the conditional and the unconditional model.
    The randomness comes from ``generator`` (on the CPU) when given, else from torch's global one.
    """
    n, device = len(x0), x0.device
    t = torch.randint(0, schedule.T, (n,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator).to(device)
    if labels is not None and p_uncond > 0:
        drop = torch.rand(n, generator=generator).to(device) < p_uncond
        labels = torch.where(drop, torch.full_like(labels, model.null_class), labels)
    x_t = q_sample(x0, t, noise, schedule)
    return F.mse_loss(model(x_t, t.to(device), labels), noise)


class EMA:
    """An exponential moving average of a model's weights (Ho et al. use a decay of 0.9999), used for sampling.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so a short run's average is
    not dominated by its random start.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"the EMA decay must be in [0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, new in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(new.detach(), 1 - d)
        for avg, new in zip(self.model.buffers(), model.buffers(), strict=True):
            avg.copy_(new)


# --- the recipes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffusionRecipe:
    """How the pixel-space DDPM is trained and measured (notebook 04, section 3)."""

    channels: tuple[int, ...] = (32, 64, 64)  # the U-Net's widths at 28, 14 and 7 pixels
    blocks: int = 1
    time_dim: int = 64
    schedule: str = "cosine"
    T: int = 1000  # noqa: N815
    batch_size: int = 128
    lr: float = 1e-3  # Adam, linear warm-up then a cosine decay to lr / 10
    warmup: int = 200  # steps
    epochs: float = 20
    images: int | None = None  # training images (None: all 60,000)
    p_uncond: float = 0.1  # the share of labels dropped (classifier-free guidance)
    ema: float = 0.999  # 0: no average
    fid_samples: int = 5000  # the card's FID-FMNIST
    fid_steps: int = 50  # DDIM steps of those samples
    guidance: float = 1.0  # their guidance scale
    curve_samples: int = 1000  # FID-FMNIST after every epoch
    curve_steps: int = 20

    def __post_init__(self) -> None:
        require_positive(self, "blocks", "time_dim", "T", "batch_size", "fid_samples", "fid_steps", "curve_samples",
                         "curve_steps", "warmup", allow_zero=("warmup",))
        require_rate(self, "p_uncond", "ema")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"DiffusionRecipe.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not self.epochs > 0 or not self.lr > 0 or self.guidance < 0:
            raise ValueError(f"DiffusionRecipe needs epochs > 0, lr > 0 and guidance >= 0, got {self.epochs!r}, "
                             f"{self.lr!r} and {self.guidance!r}")
        if self.images is not None and self.images < self.batch_size:
            raise ValueError(f"DiffusionRecipe.images={self.images} is fewer than one batch of {self.batch_size}")

    def make_model(self) -> UNet:
        """A fresh class-conditional U-Net of this recipe (seed first)."""
        return UNet(channels=tuple(self.channels), blocks=self.blocks, time_dim=self.time_dim, num_classes=10,
                    schedule=self.schedule, T=self.T)

    def describe(self) -> str:
        """One line for a notebook's parameters cell."""
        data = f"{self.images:,}" if self.images else "all 60,000"
        return (f"U-Net {self.channels} x {self.blocks} block(s), {self.schedule} schedule T={self.T}, "
                f"{self.epochs:g} epoch(s) of {data} images, batch {self.batch_size}, Adam {self.lr:g}, "
                f"labels dropped {self.p_uncond:.0%}, EMA {self.ema:g}")


#: ``ci``/``cpu``/``gpu``: what notebook 04 trains in section 3; ``ship``: the shipped DDPM; ``test``: the tests'.
#: ``ci`` is a narrow U-Net trained on small batches at a higher rate: a few hundred updates, enough for blobs
#: with the right outlines (well ahead of an untrained network), not for garments.
#: A cheap FID the card also records, so a test can recompute it exactly in seconds (the card's own FID takes minutes).
CHECK_SAMPLES, CHECK_STEPS = 200, 10

RECIPES: dict[str, DiffusionRecipe] = {
    "ci": DiffusionRecipe(channels=(8, 16, 16), time_dim=32, batch_size=32, lr=3e-3, warmup=20, epochs=1,
                          images=6_400, ema=0.99, fid_samples=500, fid_steps=10, curve_samples=200, curve_steps=10),
    "cpu": DiffusionRecipe(channels=(16, 32, 32), time_dim=32, batch_size=64, lr=2e-3, warmup=50, epochs=1,
                           images=20_000, ema=0.995, fid_samples=1000, fid_steps=20, curve_samples=500),
    "gpu": DiffusionRecipe(epochs=20),
    "ship": DiffusionRecipe(epochs=10, lr=2e-3, curve_samples=500),  # planned as about an hour of a quiet 2-core CPU
    "test": DiffusionRecipe(channels=(8, 16), time_dim=16, T=100, batch_size=16, warmup=2, epochs=1, images=64,
                            ema=0.9, fid_samples=32, fid_steps=5, curve_samples=16, curve_steps=5),
}


# --- training --------------------------------------------------------------------------------------------------


def fit_diffusion(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, recipe: DiffusionRecipe, seed: int = 0,
    epochs: float | None = None, max_minutes: float | None = None, desc: str = "DDPM",
    on_epoch: Any = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``model`` on ``images`` (in [-1, 1]) with :func:`diffusion_loss`; return the model to sample with.

    That is the :class:`EMA` copy when the recipe's ``ema`` > 0, else ``model`` itself. ``epochs`` replaces the
    recipe's (it may be fractional). ``on_epoch(model, epoch)``, if given, is called with the sampling model
    after each whole epoch (the curve of :func:`train_diffusion`); its seconds are not counted as training.
    The history holds the ``loss`` of every step, ``seconds`` (training only), ``steps`` and ``epochs``.
    """
    epochs = recipe.epochs if epochs is None else epochs
    device = next(model.parameters()).device
    schedule = schedule_of(model)
    rng = seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    ema = EMA(model, recipe.ema) if recipe.ema > 0 else None
    per_epoch = len(images) // recipe.batch_size
    if per_epoch == 0:
        raise ValueError(f"{len(images)} training images are fewer than one batch of {recipe.batch_size}")
    total = max(1, round(epochs * per_epoch))
    history: dict[str, Any] = {"loss": []}
    budget, bar, step, seconds = TimeBudget(max_minutes), progress(total=total, desc=desc), 0, 0.0
    model.train()
    while step < total:
        start = time.perf_counter()
        data = (images,) if labels is None else (images, labels)
        for batch in tensor_batches(*data, batch_size=recipe.batch_size, generator=rng, drop_last=True):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, lr=recipe.lr, min_lr=recipe.lr / 10, warmup=recipe.warmup, steps=total)
            y = batch[1].to(device) if labels is not None else None
            loss = diffusion_loss(model, batch[0].to(device), y, schedule, recipe.p_uncond, rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            history["loss"].append(loss.item())
            step += 1
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if step == total:
                break
        seconds += time.perf_counter() - start
        if on_epoch is not None and step % per_epoch == 0:
            on_epoch(ema.model if ema else model, step / per_epoch)
        if budget.spent() and step < total:
            bar.write(f"time limit of {max_minutes} minutes reached after {step / per_epoch:g} epochs")
            break
    bar.close()
    model.eval()
    history.update(seconds=round(seconds, 2), steps=step, epochs=round(step / per_epoch, 3))
    return (ema.model if ema else model), history


def sample_fid(
    model: nn.Module, classifier: nn.Module, reference: tuple[torch.Tensor, torch.Tensor], n: int, steps: int,
    guidance: float = 1.0, seed: int = FID_SEED, method: str = "ddim", batch_size: int = 500,
) -> float:
    """FID-FMNIST of ``n`` class-balanced samples (``steps`` steps of ``method``), the noise seeded by ``seed``."""
    labels = balanced_labels(n, model.config.num_classes) if model.config.num_classes else None
    images = sample(model, n, labels, steps=steps, method=method, guidance=guidance,
                    generator=torch.Generator().manual_seed(seed), batch_size=batch_size)
    return evaluation.fid_fmnist(images, classifier, reference, value_range=(-1, 1))


def train_diffusion(
    out: Path, recipe: str | DiffusionRecipe = "ship", epochs: int | None = None, seed: int = 0,
    limit: int | None = None, max_minutes: float | None = None, classifier_dir: Path | None = None,
) -> dict[str, Any]:
    """Train the class-conditional DDPM on Fashion-MNIST and write it (its EMA weights) to ``out``; return the card.

    ``recipe`` is a name of :data:`RECIPES` or a :class:`DiffusionRecipe`; ``epochs`` replaces its epochs and
    ``limit`` keeps the first ``limit`` training images. FID-FMNIST (the classifier and reference statistics in
    ``classifier_dir``, default the shipped ones) is measured on the recipe's ``curve_samples`` after every
    epoch and on its ``fid_samples`` DDIM samples at the end, with the noise seed :data:`FID_SEED`. With
    ``max_minutes`` training stops at the end of the first epoch past that time (the learning-rate decay still
    assumes the recipe's epochs).
    """
    out = Path(out)
    device = get_device()
    r = choose_recipe(RECIPES, recipe, **({"epochs": epochs} if epochs else {}))
    folder = Path(classifier_dir) if classifier_dir else None
    classifier, clf_card = load_checkpoint((folder or SHIPPED_DIR) / CLASSIFIER_NAME,
                                           device=device)
    x_train, y_train = image_tensors("fashion-mnist", train=True)
    n = min(x for x in (r.images, limit, len(x_train)) if x)
    subset = n < len(x_train)
    x_train, y_train = x_train[:n], y_train[:n]
    reference = reference_stats.load_or_compute(classifier, x_train if subset else None, cache_dir=folder)
    seed_everything(seed)
    model = r.make_model().to(device)
    curve: dict[str, list[float]] = {"epoch": [], "fid": []}

    def measure(sampler: nn.Module, epoch: float) -> None:
        curve["epoch"].append(round(epoch, 3))
        curve["fid"].append(round(sample_fid(sampler, classifier, reference, r.curve_samples, r.curve_steps,
                                             r.guidance), 2))
        print(f"epoch {epoch:g}: FID-FMNIST ({r.curve_samples} samples, {r.curve_steps} DDIM steps) "
              f"{curve['fid'][-1]:.1f}")

    measure(model, 0.0)
    sampler, history = fit_diffusion(model, x_train * 2 - 1, y_train, r, seed=seed, max_minutes=max_minutes,
                                     on_epoch=measure)
    start = time.perf_counter()
    fid = sample_fid(sampler, classifier, reference, r.fid_samples, r.fid_steps, r.guidance)
    sampling_seconds = time.perf_counter() - start
    check = sample_fid(sampler, classifier, reference, CHECK_SAMPLES, CHECK_STEPS, r.guidance)
    epochs_done = history["epochs"]
    per_epoch = max(1, len(history["loss"]) // max(1, round(epochs_done)))
    card = {
        "task": "class-conditional DDPM (classifier-free guidance) for Fashion-MNIST (notebook 04)",
        "data": f"Fashion-MNIST train ({n:,} images with labels), scaled to [-1, 1]",
        "training": {
            "epochs": epochs_done, "steps": history["steps"], "batch_size": r.batch_size, "seed": seed,
            "recipe": asdict(r),
            "optimizer": f"Adam lr {r.lr}, {r.warmup} warm-up steps, cosine decay to {r.lr / 10:g}",
            "loss": f"eps-prediction MSE (Ho et al. 2020), uniform t in [0, {r.T}), {r.schedule} schedule, "
                    f"labels replaced by the null class with p = {r.p_uncond}",
            "weights": f"EMA of the weights, decay {r.ema}" if r.ema else "the last weights",
        },
        **training_time(history["seconds"], epochs_done, device),
        "fid_fmnist": {
            "value": round(fid, 3), "samples": r.fid_samples, "sampler": "ddim", "steps": r.fid_steps,
            "eta": 0.0, "guidance": r.guidance, "clip_x0": True, "noise_seed": FID_SEED, "labels": "balanced",
            "sampling_seconds": round(sampling_seconds, 1), "hardware": training_time(0, 1, device)["hardware"],
            "classifier": f"{CLASSIFIER_NAME}.safetensors (sha256 {clf_card['weights_sha256'][:12]}…)",
            "reference": f"features of the {n:,} training images",
        },
        "fid_check": {"value": round(check, 3), "samples": CHECK_SAMPLES, "steps": CHECK_STEPS,
                      "guidance": r.guidance, "noise_seed": FID_SEED},
        "fid_curve": {**curve, "samples": r.curve_samples, "steps": r.curve_steps, "noise_seed": FID_SEED},
        "loss_curve": [round(sum(history["loss"][i:i + per_epoch]) / len(history["loss"][i:i + per_epoch]), 5)
                       for i in range(0, len(history["loss"]), per_epoch)],
        "command": repeat_command("diffusion", recipe, epochs_done, seed),
    }
    return finish_run(sampler, out / DDPM_NAME, card,
                      f"DDPM: FID-FMNIST ({r.fid_samples} samples, {r.fid_steps} DDIM steps) {fid:.2f} after "
                      f"{epochs_done:g} epochs, {history['seconds']:.0f} s of training, "
                      f"{num_parameters(sampler):,} parameters")


# --- section 6: latent diffusion on the shipped VAE's codes -------------------------------------------------------


def latent_codes(vae_model: vae.LatentModel, images: torch.Tensor) -> torch.Tensor:
    """``[N, d]``: the VAE's posterior means of ``images`` (in [0, 1]): the data latent diffusion learns."""
    return vae.encode_means(vae_model, images)


def fit_latent(
    codes: torch.Tensor, labels: torch.Tensor | None, steps: int = 3000, batch_size: int = 256, lr: float = 2e-3,
    p_uncond: float = 0.1, seed: int = 0, hidden: int = 256, depth: int = 3, schedule: str = "cosine",
    desc: str = "latent diffusion",
) -> tuple[LatentDenoiser, dict[str, Any]]:
    """A :class:`LatentDenoiser` trained on ``codes`` ``[N, d]`` for ``steps`` steps (seconds on a CPU; section 6).

    The codes are standardised per dimension (the model keeps the shift and scale, and the standardised codes'
    range, its ``data_range``); the loss is :func:`diffusion_loss` with labels dropped with probability
    ``p_uncond``. ``labels`` None trains an unconditional model. Returns the model, in eval mode, and the history
    (``loss`` per step, ``seconds``).
    """
    if codes.ndim != 2 or len(codes) < batch_size:
        raise ValueError(f"codes must be [N, d] with N >= batch_size = {batch_size}, got {tuple(codes.shape)}")
    rng = seed_everything(seed)
    model = LatentDenoiser(latent_dim=codes.shape[1], hidden=hidden, depth=depth,
                           num_classes=10 if labels is not None else 0, schedule=schedule)
    model.shift.copy_(codes.mean(0))
    model.scale.copy_(codes.std(0).clamp(min=1e-3))
    z = model.standardise(codes)
    model.low.copy_(z.min(0).values)
    model.high.copy_(z.max(0).values)
    sched = schedule_of(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, Any] = {"loss": []}
    start = time.perf_counter()
    model.train()
    for step in progress(range(steps), desc=desc):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, lr=lr, min_lr=lr / 10, warmup=min(100, steps // 10), steps=steps)
        idx = torch.randint(0, len(z), (batch_size,), generator=rng)
        y = labels[idx] if labels is not None else None
        loss = diffusion_loss(model, z[idx], y, sched, p_uncond, rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history["loss"].append(loss.item())
    history["seconds"] = round(time.perf_counter() - start, 2)
    return model.eval(), history


def latent_images(
    denoiser: LatentDenoiser, vae_model: vae.LatentModel, n: int, labels: torch.Tensor | None = None,
    steps: int = 50, guidance: float = 1.0, generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sampled codes ``[n, d]`` and their images in [0, 1]: DDIM in the standardised code space, each
    predicted code clamped to the training codes' range (``denoiser.data_range``), unstandardised, decoded by the
    VAE (section 6). ``labels`` None for an unconditional denoiser."""
    z = sample(denoiser, n, labels, steps=steps, guidance=guidance, generator=generator,
               clip=denoiser.data_range, shape=(denoiser.config.latent_dim,), batch_size=n)
    with evaluating(denoiser):
        codes = denoiser.unstandardise(z.to(denoiser.shift.device)).cpu()
    return codes, vae.decode_probs(vae_model, codes)
