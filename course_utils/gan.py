"""GANs: the networks, the training step, sampling, and the shipped conditional DCGAN.

Taught in notebook 02:

- section 2, the 2-D toy: :class:`ToyGenerator`, :class:`ToyDiscriminator` and
  :func:`pack` (PacGAN, the remedy for mode collapse);
- section 3, DCGAN: :class:`Generator` and :class:`Discriminator` (plain or
  class-conditional), :func:`dcgan_init` (N(0, 0.02) weights) and
  :func:`gan_step`, one update of both players with the non-saturating loss;
- section 4: :func:`generate` (seeded samples, the same on every device) and
  :func:`generator_fid`;
- section 3: :class:`GANRecipe` and :data:`RECIPES`, the training settings of each profile;
- section 6: :func:`train_gan`, what ``python -m course_utils.train gan`` runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils import evaluation, reference_stats
from course_utils.checkpoints import finish_run, load_checkpoint, num_parameters, register_model
from course_utils.classifier import CLASSIFIER_NAME
from course_utils.cli import repeat_command
from course_utils.configs import choose_recipe, make_config, require_positive
from course_utils.datasets import image_tensors, tensor_batches
from course_utils.progress import TimeBudget, progress
from course_utils.runtime import get_device, seed_everything, training_time
from course_utils.training import evaluating

IMAGE_SIZE = 28
GENERATOR_NAME = "cgan_generator"
FID_SEED = 1234  # the noise seed of every FID-FMNIST measurement in a card


# --- 2-D toy GAN (section 2) ----------------------------------------------------


@dataclass(frozen=True)
class ToyConfig:
    """Sizes of the toy MLPs; ``pack`` > 1 makes the discriminator judge packs of samples (PacGAN)."""

    z_dim: int = 2  # the noise G starts from
    hidden: int = 128  # units in each hidden layer of G and D
    data_dim: int = 2  # points in the plane
    pack: int = 1  # samples D judges together (PacGAN); 1 = one at a time

    def __post_init__(self) -> None:
        require_positive(self, "z_dim", "hidden", "data_dim", "pack")


@register_model
class ToyGenerator(nn.Module):
    """An MLP from noise ``z`` to a 2-D point (notebook 02, section 2)."""

    def __init__(self, config: ToyConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(ToyConfig, config, overrides)
        self.net = nn.Sequential(
            nn.Linear(c.z_dim, c.hidden), nn.ReLU(),
            nn.Linear(c.hidden, c.hidden), nn.ReLU(),
            nn.Linear(c.hidden, c.data_dim),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN's packing: ``[N, d]`` samples -> ``[N / m, m * d]``, ``m`` consecutive samples per row.

    A discriminator that reads a pack of a collapsed generator's samples sees
    near-copies side by side, which a pack of real data shows less often.
    """
    if m < 1:
        raise ValueError(f"pack size must be at least 1, got {m}")
    if len(x) % m:
        raise ValueError(f"batch of {len(x)} is not a multiple of pack={m}")
    return x.reshape(len(x) // m, -1)


@register_model
class ToyDiscriminator(nn.Module):
    """An MLP from a 2-D point to one logit (section 2).

    With ``pack = m`` (PacGAN, Lin et al. 2018) it reads ``m`` samples at once,
    concatenated by :func:`pack`, and returns one logit per pack. The batch
    size must then be a multiple of ``m``.
    """

    def __init__(self, config: ToyConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(ToyConfig, config, overrides)
        self.net = nn.Sequential(
            nn.Linear(c.data_dim * c.pack, c.hidden), nn.LeakyReLU(0.2),
            nn.Linear(c.hidden, c.hidden), nn.LeakyReLU(0.2),
            nn.Linear(c.hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pack(x, self.config.pack)).squeeze(1)


# --- DCGAN (section 3) ------------------------------------------------------------


@dataclass(frozen=True)
class GANConfig:
    """DCGAN sizes for 28x28 grey images.

    ``channels`` is the width of the last hidden layer of G and the first of D;
    ``num_classes = 0`` is the plain DCGAN, ``num_classes = 10`` the conditional
    one (Mirza & Osindero 2014): G gets a learned label embedding next to ``z``
    and D gets the label as an extra image channel.
    """

    z_dim: int = 64
    channels: int = 64
    num_classes: int = 0
    embed_dim: int = 10

    def __post_init__(self) -> None:
        require_positive(self, "z_dim", "channels", "embed_dim", "num_classes", allow_zero=("num_classes",))


@register_model
class Generator(nn.Module):
    """DCGAN generator: ``z`` (and a label) -> a 28x28 image in [-1, 1] (section 3).

    Shapes: ``[z | embed] -> 2c x 7 x 7 -> c x 14 x 14 -> 1 x 28 x 28`` with
    transposed convolutions, batch norm and ReLU, and ``tanh`` at the end.
    """

    def __init__(self, config: GANConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(GANConfig, config, overrides)
        extra = c.embed_dim if c.num_classes else 0
        self.embed = nn.Embedding(c.num_classes, c.embed_dim) if c.num_classes else None
        w = c.channels
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c.z_dim + extra, 2 * w, 7, 1, 0, bias=False),  # 1 -> 7
            nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, 1, 4, 2, 1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if _conditional(self, labels, "generator"):
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z[:, :, None, None])


@register_model
class Discriminator(nn.Module):
    """DCGAN discriminator: a 28x28 image (and a label) -> one logit (section 3).

    Strided convolutions with LeakyReLU(0.2), batch norm on the hidden layer
    (not on the input layer), no sigmoid: the loss is ``BCEWithLogitsLoss``.
    """

    def __init__(self, config: GANConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(GANConfig, config, overrides)
        self.embed = nn.Embedding(c.num_classes, IMAGE_SIZE * IMAGE_SIZE) if c.num_classes else None
        w = c.channels
        self.net = nn.Sequential(
            nn.Conv2d(1 + (1 if c.num_classes else 0), w, 4, 2, 1), nn.LeakyReLU(0.2),  # 28 -> 14
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(2 * w * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if _conditional(self, labels, "discriminator"):
            x = torch.cat([x, self.embed(labels).view(-1, 1, IMAGE_SIZE, IMAGE_SIZE)], dim=1)
        return self.net(x).squeeze(1)


def _conditional(model: nn.Module, labels: torch.Tensor | None, what: str) -> bool:
    """True for a conditional model given labels; a clear error when labels are missing or not expected."""
    if model.embed is None:
        if labels is not None:
            raise ValueError(f"this {what} is unconditional (num_classes=0): do not pass labels")
        return False
    if labels is None:
        raise ValueError(f"this {what} is conditional: pass labels (class indices)")
    return True


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (use ``model.apply(dcgan_init)``): conv and linear weights N(0, 0.02), BN scale N(1, 0.02).

    The weights follow Radford et al. (2015); the batch-norm scales follow the
    PyTorch DCGAN example (notebook 02, section 3). Biases and batch-norm shifts
    are set to 0. Other modules are left alone: the class embeddings of the
    conditional networks (``nn.Embedding``, which DCGAN did not have) keep
    PyTorch's default N(0, 1).
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _call(model: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    return model(x) if labels is None else model(x, labels)


def discriminator_step(
    D: nn.Module, opt_d: torch.optim.Optimizer, real: torch.Tensor, fake: torch.Tensor,
    labels: torch.Tensor | None = None, real_label: float = 0.9,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D's half of a GAN step (notebook 02, Exercise 2): one update on a real batch and the fakes.

    The real batch's target is ``real_label`` (below 1: one-sided label smoothing),
    the fakes' 0; the fakes are detached, so this update stays out of G.
    Returns D's loss and its logits on the two batches.
    """
    bce = nn.BCEWithLogitsLoss()
    d_real, d_fake = _call(D, real, labels), _call(D, fake.detach(), labels)
    loss_d = bce(d_real, torch.full_like(d_real, real_label)) + bce(d_fake, torch.zeros_like(d_fake))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    return loss_d, d_real, d_fake


def gan_step(
    G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
    real: torch.Tensor, labels: torch.Tensor | None = None, real_label: float = 0.9,
) -> dict[str, float]:
    """One GAN update: D on a real and a fake batch, then G with the non-saturating loss (section 3).

    ``real`` is a batch of data (images in [-1, 1], or toy points); ``labels``
    are class indices for a conditional GAN (None otherwise). ``real_label``
    below 1 is one-sided label smoothing. The noise is drawn from torch's global
    generator on ``real``'s device. Returns the two losses and the mean D(x), D(G(z)).
    """
    z = torch.randn(len(real), G.config.z_dim, device=real.device)
    fake = _call(G, z, labels)
    loss_d, d_real, d_fake = discriminator_step(D, opt_d, real, fake, labels, real_label)
    # generator: maximise log D(G(z)) (non-saturating), i.e. label the fakes "real"
    d_gen = _call(D, fake, labels)
    loss_g = nn.BCEWithLogitsLoss()(d_gen, torch.ones_like(d_gen))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(d_real).mean().item(), "d_fake": torch.sigmoid(d_fake).mean().item()}


def generate(
    generator: Generator, n: int, labels: torch.Tensor | None = None, rng: torch.Generator | None = None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """``n`` images in [-1, 1] on the CPU, made in eval mode, batch by batch.

    The noise is drawn on the CPU from ``rng``, so a seed gives the same images
    on every device (up to float rounding). A conditional generator needs
    ``labels`` (``[n]`` class indices); e.g. :func:`balanced_labels`.
    """
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for {n} images")
    device = next(generator.parameters()).device
    out = []
    with evaluating(generator):
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = torch.randn(m, generator.config.z_dim, generator=rng).to(device)
            y = None if labels is None else labels[start:start + m].to(device)
            out.append(generator(z, y).float().cpu())
    return torch.cat(out)


def balanced_labels(n: int, num_classes: int = 10) -> torch.Tensor:
    """``[n]`` class indices, each class equally often (as in Fashion-MNIST)."""
    return torch.arange(n) % num_classes


def generator_fid(
    G: Generator, classifier: nn.Module, reference: tuple[torch.Tensor, torch.Tensor], n: int,
    seed: int = FID_SEED,
) -> float:
    """FID-FMNIST of ``n`` samples of ``G`` (balanced labels if conditional), noise seeded by ``seed``."""
    labels = balanced_labels(n, G.config.num_classes) if G.config.num_classes else None
    images = generate(G, n, labels, rng=torch.Generator().manual_seed(seed))
    return evaluation.fid_fmnist(images, classifier, reference, value_range=(-1, 1))


# --- the recipes, and the shipped conditional DCGAN (section 6) --------------------------


@dataclass(frozen=True)
class GANRecipe:
    """How a conditional DCGAN is trained: width, data, batch, updates, Adam's rate (notebook 02, section 3)."""

    channels: int = 64  # the width w of G and D
    z_dim: int = 64
    batch_size: int = 128
    steps: int = 30 * 468  # updates of both players; 468 batches of 128 = one epoch of 60,000 images
    lr: float = 2e-4  # Adam's rate for G and D, betas (0.5, 0.999) (Radford et al.)
    real_label: float = 0.9  # one-sided label smoothing
    images: int | None = None  # training images (None: all 60,000)

    def __post_init__(self) -> None:
        require_positive(self, "channels", "z_dim", "batch_size", "steps")
        if not self.lr > 0 or not 0 < self.real_label <= 1:
            raise ValueError(f"GANRecipe needs lr > 0 and real_label in (0, 1], got {self.lr!r} and "
                             f"{self.real_label!r}")
        if self.images is not None and self.images < self.batch_size:
            raise ValueError(f"GANRecipe.images={self.images} is fewer than one batch of {self.batch_size}")

    def describe(self) -> str:
        """One line for a notebook's parameters cell."""
        data = f"{self.images:,}" if self.images else "all 60,000"
        return (f"width {self.channels}, {self.steps:,} steps of {self.batch_size} images from {data} "
                f"(lr {self.lr:g}, real label {self.real_label:g})")


#: ``ci``/``cpu``/``gpu``: what notebook 02 trains in each profile; ``ship``: the shipped generator (30 epochs).
#: ``ci`` is a narrower model (width 16) with small batches at a higher rate: 600 updates in seconds of CPU.
RECIPES: dict[str, GANRecipe] = {
    "ci": GANRecipe(channels=16, batch_size=16, steps=600, lr=1e-3, images=20_000),
    "cpu": GANRecipe(steps=3 * 468),
    "gpu": GANRecipe(steps=15 * 468),
    "ship": GANRecipe(),
    "test": GANRecipe(channels=8, z_dim=8, batch_size=16, steps=4),
}


def train_gan(
    out: Path, classifier_dir: Path, recipe: str | GANRecipe = "ship", seed: int = 0, limit: int | None = None,
    epochs: int | None = None, curve_samples: int = 2000, fid_samples: int = 10_000,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """Train the conditional DCGAN on Fashion-MNIST and write its generator to ``out``; return the card.

    ``recipe`` is a name of :data:`RECIPES` or a :class:`GANRecipe`; ``epochs``
    replaces its steps by that many passes over the training images, and
    ``limit`` keeps the first ``limit`` of them. FID-FMNIST is measured with
    the classifier in ``classifier_dir``: on ``curve_samples`` after every
    epoch (the curve in the card) and on ``fid_samples`` at the end. With
    ``max_minutes`` training stops at the end of the first epoch past that time
    (the card records the epochs done; ``--epochs`` with that number reproduces the run).
    """
    out = Path(out)
    device = get_device()
    r = choose_recipe(RECIPES, recipe)
    classifier, clf_card = load_checkpoint(Path(classifier_dir) / CLASSIFIER_NAME, device=device)
    x_train, y_train = image_tensors("fashion-mnist", train=True)
    n = min(x for x in (r.images, limit, len(x_train)) if x)
    subset = n < len(x_train)
    x_train, y_train = x_train[:n], y_train[:n]
    reference = reference_stats.load_or_compute(classifier, x_train if subset else None, cache_dir=classifier_dir)
    x_train = x_train * 2 - 1  # tanh range
    steps_per_epoch = len(x_train) // r.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(x_train)} training images are fewer than one batch of {r.batch_size}")
    steps = epochs * steps_per_epoch if epochs else r.steps
    rng = seed_everything(seed)
    G = Generator(z_dim=r.z_dim, channels=r.channels, num_classes=10).to(device)
    D = Discriminator(z_dim=r.z_dim, channels=r.channels, num_classes=10).to(device)
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    opt_g = torch.optim.Adam(G.parameters(), lr=r.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=r.lr, betas=(0.5, 0.999))
    curve = {"epoch": [0.0], "fid": [round(generator_fid(G, classifier, reference, curve_samples), 2)]}
    history: dict[str, list[float]] = {"loss_d": [], "loss_g": [], "d_real": [], "d_fake": []}
    train_seconds, step, budget = 0.0, 0, TimeBudget(max_minutes)
    bar = progress(total=steps, desc="cGAN")
    while step < steps:
        start, sums, done = time.perf_counter(), dict.fromkeys(history, 0.0), 0
        for real, labels in tensor_batches(x_train, y_train, batch_size=r.batch_size, generator=rng, drop_last=True):
            stats = gan_step(G, D, opt_g, opt_d, real.to(device), labels.to(device), r.real_label)
            for k in sums:
                sums[k] += stats[k]
            step, done = step + 1, done + 1
            bar.update(1)
            bar.set_postfix(d=f"{stats['loss_d']:.2f}", g=f"{stats['loss_g']:.2f}")
            if step == steps:
                break
        train_seconds += time.perf_counter() - start
        for k in history:
            history[k].append(round(sums[k] / done, 4))
        curve["epoch"].append(round(step / steps_per_epoch, 3))
        curve["fid"].append(round(generator_fid(G, classifier, reference, curve_samples), 2))
        bar.write(f"epoch {curve['epoch'][-1]:g}: loss D {history['loss_d'][-1]:.3f} G {history['loss_g'][-1]:.3f}, "
                  f"D(x) {history['d_real'][-1]:.2f} D(G(z)) {history['d_fake'][-1]:.2f}, "
                  f"FID-FMNIST ({curve_samples}) {curve['fid'][-1]:.1f}")
        if budget.spent() and step < steps:
            bar.write(f"time limit of {max_minutes} minutes reached after {curve['epoch'][-1]:g} epochs")
            break
    bar.close()
    epochs_done = curve["epoch"][-1]
    fid = generator_fid(G, classifier, reference, fid_samples)
    card = {
        "task": "conditional DCGAN generator for Fashion-MNIST (notebook 02)",
        "data": f"Fashion-MNIST train ({len(x_train):,} images with labels), scaled to [-1, 1]",
        "training": {
            "epochs": epochs_done, "steps": step, "batch_size": r.batch_size, "seed": seed,
            "recipe": {**asdict(r), "steps": step},
            "optimizer": f"Adam lr {r.lr}, betas (0.5, 0.999), for G and D",
            "loss": "BCEWithLogits, non-saturating G loss, one-sided label smoothing "
                    f"(real label {r.real_label}), DCGAN N(0, 0.02) init",
            "discriminator": {"num_parameters": num_parameters(D)},
        },
        **training_time(train_seconds, epochs_done, device),
        "fid_fmnist": {
            "value": round(fid, 3), "samples": fid_samples, "noise_seed": FID_SEED, "labels": "balanced",
            "classifier": f"{CLASSIFIER_NAME}.safetensors (sha256 {clf_card['weights_sha256'][:12]}…)",
            "reference": f"features of the {len(x_train):,} training images",
        },
        "fid_curve": {**curve, "samples": curve_samples, "noise_seed": FID_SEED},
        "history": history,
        "command": repeat_command("gan", recipe, epochs_done, seed),
    }
    return finish_run(G, out / GENERATOR_NAME, card, f"generator: FID-FMNIST ({fid_samples} samples) {fid:.2f} "
                      f"after {epochs_done:g} epochs, {train_seconds:.0f} s of training")

