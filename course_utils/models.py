"""The networks of notebook 02 (GANs), small enough to train on a laptop CPU.

- :class:`ToyGenerator` and :class:`ToyDiscriminator`: MLPs for the 2-D toy GAN
  (section 2), with the PacGAN option that fights mode collapse.
- :class:`Generator` and :class:`Discriminator`: the DCGAN pair for 28x28 images
  (section 3), unconditional or class-conditional (``num_classes=10``), and
  :func:`dcgan_init`, the N(0, 0.02) initialisation of Radford et al. (2015).
- :class:`FashionClassifier`: a small CNN whose penultimate features define the
  offline FID-FMNIST (section 4, :mod:`course_utils.metrics`); it is also the
  classifier of the data-augmentation experiment (section 5).

Every model is rebuilt from a plain ``config`` dict (stored in checkpoint
metadata, see :mod:`course_utils.checkpoints`) with :func:`build_model`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

IMAGE_SIZE = 28


# --- 2-D toy GAN (section 2) ----------------------------------------------------


@dataclass(frozen=True)
class ToyConfig:
    """Sizes of the toy MLPs; ``pack`` > 1 makes the discriminator judge packs of samples (PacGAN)."""

    z_dim: int = 2
    hidden: int = 128
    data_dim: int = 2
    pack: int = 1


class ToyGenerator(nn.Module):
    """An MLP from noise ``z`` to a 2-D point (notebook 02, section 2)."""

    def __init__(self, config: ToyConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = _config(ToyConfig, config, overrides)
        c = self.config
        self.net = nn.Sequential(
            nn.Linear(c.z_dim, c.hidden), nn.ReLU(),
            nn.Linear(c.hidden, c.hidden), nn.ReLU(),
            nn.Linear(c.hidden, c.data_dim),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """An MLP from a 2-D point to one logit (section 2).

    With ``pack = m`` (PacGAN, Lin et al. 2018) it reads ``m`` samples at once,
    concatenated, and returns one logit per pack: a collapsed generator's packs
    look suspiciously alike, so the discriminator can punish a lack of variety.
    The batch size must then be a multiple of ``m``.
    """

    def __init__(self, config: ToyConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = _config(ToyConfig, config, overrides)
        c = self.config
        self.net = nn.Sequential(
            nn.Linear(c.data_dim * c.pack, c.hidden), nn.LeakyReLU(0.2),
            nn.Linear(c.hidden, c.hidden), nn.LeakyReLU(0.2),
            nn.Linear(c.hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.config.pack
        if len(x) % m:
            raise ValueError(f"batch of {len(x)} is not a multiple of pack={m}")
        return self.net(x.reshape(len(x) // m, -1)).squeeze(1)


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


class Generator(nn.Module):
    """DCGAN generator: ``z`` (and a label) -> a 28x28 image in [-1, 1] (section 3).

    Shapes: ``[z | embed] -> 2c x 7 x 7 -> c x 14 x 14 -> 1 x 28 x 28`` with
    transposed convolutions, batch norm and ReLU, and ``tanh`` at the end.
    """

    def __init__(self, config: GANConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = _config(GANConfig, config, overrides)
        c = self.config
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
        h = _with_labels(self, z, labels)
        return self.net(h[:, :, None, None])


class Discriminator(nn.Module):
    """DCGAN discriminator: a 28x28 image (and a label) -> one logit (section 3).

    Strided convolutions with LeakyReLU(0.2), batch norm on the hidden layer
    (not on the input layer), no sigmoid: the loss is ``BCEWithLogitsLoss``.
    """

    def __init__(self, config: GANConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = _config(GANConfig, config, overrides)
        c = self.config
        self.embed = nn.Embedding(c.num_classes, IMAGE_SIZE * IMAGE_SIZE) if c.num_classes else None
        w = c.channels
        self.net = nn.Sequential(
            nn.Conv2d(1 + (1 if c.num_classes else 0), w, 4, 2, 1), nn.LeakyReLU(0.2),  # 28 -> 14
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(2 * w * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass labels")
            x = torch.cat([x, self.embed(labels).view(-1, 1, IMAGE_SIZE, IMAGE_SIZE)], dim=1)
        return self.net(x).squeeze(1)


def _with_labels(model: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    if model.embed is None:
        if labels is not None:
            raise ValueError("this generator is unconditional (num_classes=0): do not pass labels")
        return z
    if labels is None:
        raise ValueError("this generator is conditional: pass labels (class indices)")
    return torch.cat([z, model.embed(labels)], dim=1)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (use ``model.apply(dcgan_init)``): weights N(0, 0.02), BN scale N(1, 0.02).

    PyTorch's default (Kaiming-uniform) lets the discriminator win early on
    Fashion-MNIST; the small weights keep the two players balanced (section 3).
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@torch.no_grad()
def generate(
    generator: Generator, n: int, labels: torch.Tensor | None = None, rng: torch.Generator | None = None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """``n`` images in [-1, 1] on the CPU, made in eval mode, batch by batch.

    The noise is drawn on the CPU from ``rng``, so a seed gives the same images
    on every device (up to float rounding). A conditional generator needs
    ``labels`` (``[n]`` class indices); e.g. ``torch.arange(n) % 10`` for balanced classes.
    """
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = []
    try:
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = torch.randn(m, generator.config.z_dim, generator=rng).to(device)
            y = None if labels is None else labels[start:start + m].to(device)
            out.append(generator(z, y).float().cpu())
    finally:
        generator.train(was_training)
    return torch.cat(out)


# --- the evaluation classifier (sections 4 and 5) ------------------------------------


@dataclass(frozen=True)
class ClassifierConfig:
    """A three-block CNN; ``hidden`` is the size of the feature vector behind FID-FMNIST."""

    channels: tuple[int, int, int] = (32, 64, 128)
    hidden: int = 128
    num_classes: int = 10
    dropout: float = 0.3


# Fashion-MNIST pixel mean and std, for input standardisation.
_FMNIST_MEAN, _FMNIST_STD = 0.2860, 0.3530


class FashionClassifier(nn.Module):
    """A small Fashion-MNIST CNN (about 1 MB of float32 weights, about 92% test accuracy).

    ``features(x)`` is the ``hidden``-d penultimate activation the Fréchet
    distance of section 4 is computed on; ``forward(x)`` gives class logits.
    Inputs are images in [0, 1], ``[N, 1, 28, 28]``.
    """

    def __init__(self, config: ClassifierConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = _config(ClassifierConfig, config, overrides)
        c = self.config
        layers: list[nn.Module] = []
        prev = 1
        for ch in c.channels:  # 28 -> 14 -> 7 -> 3
            layers += [nn.Conv2d(prev, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(), nn.MaxPool2d(2)]
            prev = ch
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Linear(prev * 3 * 3, c.hidden)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate ``[N, hidden]`` features (after ReLU, before dropout)."""
        return torch.relu(self.fc(self.body((x - _FMNIST_MEAN) / _FMNIST_STD)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


# --- configs and rebuilding ----------------------------------------------------------

MODELS: dict[str, type[nn.Module]] = {
    "ToyGenerator": ToyGenerator,
    "ToyDiscriminator": ToyDiscriminator,
    "Generator": Generator,
    "Discriminator": Discriminator,
    "FashionClassifier": FashionClassifier,
}


def _config(cls: type, config: Any, overrides: dict[str, Any]) -> Any:
    if config is None:
        config = cls()
    elif isinstance(config, dict):
        config = cls(**config)
    elif not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__} or a dict, got {type(config).__name__}")
    if overrides:
        config = cls(**{**asdict(config), **overrides})
    if isinstance(config, ClassifierConfig):  # JSON turns tuples into lists
        object.__setattr__(config, "channels", tuple(config.channels))
    return config


def architecture(model: nn.Module) -> dict[str, Any]:
    """``{"class": ..., "config": {...}}``: what :func:`build_model` needs to rebuild ``model``."""
    name = type(model).__name__
    if name not in MODELS or not hasattr(model, "config"):
        raise TypeError(f"{name} is not one of the course models: {', '.join(MODELS)}")
    config = asdict(model.config)
    return {"class": name, "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}}


def build_model(arch: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) model from :func:`architecture`'s dict."""
    try:
        cls = MODELS[arch["class"]]
    except KeyError as exc:
        raise ValueError(f"unknown architecture {arch!r}; known classes: {', '.join(MODELS)}") from exc
    return cls(dict(arch.get("config", {})))


def num_parameters(model: nn.Module) -> int:
    """The number of parameters (what the notebooks print next to each model)."""
    return sum(p.numel() for p in model.parameters())
