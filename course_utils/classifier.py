"""The Fashion-MNIST classifier: its features define FID-FMNIST, its accuracy judges generated data.

Taught in notebook 02, section 4 (the FID-FMNIST classifier) and section 5
(the data-augmentation experiment, with a narrower copy).

- :class:`FashionClassifier`: a small CNN; ``features(x)`` is the 128-d
  penultimate activation behind FID-FMNIST (:mod:`course_utils.evaluation`; its reference
  statistics: :mod:`course_utils.reference_stats`).
- :class:`ClassifierRecipe`, :data:`RECIPES`: the training settings (the FID classifier's, and section 5's per profile);
- :func:`fit_classifier`, :func:`accuracy`: training and testing.
- :func:`train_classifier`: what ``python -m course_utils.train classifier`` runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils import evaluation, reference_stats
from course_utils.checkpoints import register_model, save_checkpoint
from course_utils.cli import repeat_command
from course_utils.configs import choose_recipe, make_config, require_positive, require_rate
from course_utils.datasets import image_tensors, tensor_batches
from course_utils.progress import TimeBudget, progress
from course_utils.runtime import get_device, seed_everything, training_time
from course_utils.training import evaluating

CLASSIFIER_NAME = "fmnist_classifier"

# Fashion-MNIST pixel mean and std, for input standardisation.
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


@dataclass(frozen=True)
class ClassifierConfig:
    """A three-block CNN; ``hidden`` is the size of the feature vector behind FID-FMNIST."""

    channels: tuple[int, int, int] = (32, 64, 128)
    hidden: int = 128
    num_classes: int = 10
    dropout: float = 0.3

    def __post_init__(self) -> None:
        require_positive(self, "hidden", "num_classes")
        if len(self.channels) != 3 or any(not isinstance(c, int) or c < 1 for c in self.channels):
            raise ValueError(f"ClassifierConfig.channels must be three positive ints, got {self.channels!r}")
        require_rate(self, "dropout")


@register_model
class FashionClassifier(nn.Module):
    """A small Fashion-MNIST CNN (about 1 MB of float32 weights, about 93% test accuracy).

    ``features(x)`` is the ``hidden``-d penultimate activation the Fréchet
    distance of 02, section 4 is computed on; ``forward(x)`` gives class logits.
    Inputs are images in [0, 1], ``[N, 1, 28, 28]``.
    """

    def __init__(self, config: ClassifierConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(ClassifierConfig, config, overrides)
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
        return torch.relu(self.fc(self.body((x - FMNIST_MEAN) / FMNIST_STD)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@dataclass(frozen=True)
class ClassifierRecipe:
    """How a :class:`FashionClassifier` is trained: its size, batch, length and AdamW's peak rate (notebook 02)."""

    channels: tuple[int, int, int] = (32, 64, 128)
    hidden: int = 128
    batch_size: int = 128
    epochs: int | None = 10  # give epochs or steps, not both
    steps: int | None = None  # a fixed number of updates whatever the data size (a fair budget across data sets)
    lr: float = 2e-3  # one-cycle peak
    flip: bool = True  # random horizontal flips

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("a ClassifierRecipe takes exactly one of epochs and steps")
        require_positive(self, "hidden", "batch_size", *(("epochs",) if self.steps is None else ("steps",)))
        if not self.lr > 0:
            raise ValueError(f"ClassifierRecipe.lr must be > 0, got {self.lr!r}")

    def describe(self) -> str:
        """One line for a notebook's parameters cell."""
        length = f"{self.epochs} epochs" if self.steps is None else f"{self.steps} steps"
        return f"channels {self.channels}, hidden {self.hidden}, {length} of {self.batch_size} images, lr {self.lr:g}"


#: ``ship``: the FID-FMNIST classifier (10 epochs). ``ci``/``cpu``/``gpu``: the narrower classifier that notebook 02's
#: augmentation experiment (section 5) trains for each arm in each profile, a fixed number of steps.
RECIPES: dict[str, ClassifierRecipe] = {
    "ci": ClassifierRecipe(channels=(16, 32, 64), hidden=64, batch_size=64, epochs=None, steps=30),
    "cpu": ClassifierRecipe(channels=(16, 32, 64), hidden=64, batch_size=64, epochs=None, steps=400),
    "gpu": ClassifierRecipe(channels=(16, 32, 64), hidden=64, batch_size=64, epochs=None, steps=800),
    "ship": ClassifierRecipe(),
}


def fit_classifier(
    images: torch.Tensor, labels: torch.Tensor, recipe: str | ClassifierRecipe = "ship", seed: int = 0,
    device: torch.device | None = None, desc: str = "classifier", max_minutes: float | None = None,
    **overrides: Any,
) -> FashionClassifier:
    """Train a :class:`FashionClassifier` on images in [0, 1] (AdamW, one-cycle learning rate, random flips).

    ``recipe`` is a name of :data:`RECIPES` or a :class:`ClassifierRecipe`;
    ``overrides`` replace its fields (``steps=5`` replaces the recipe's epochs, and the reverse). With
    ``max_minutes`` training stops at the end of the first epoch that passes
    that time (``model.epochs_done`` says how many ran).
    """
    if ("steps" in overrides) != ("epochs" in overrides):  # a length given in one unit replaces the other
        overrides = {"epochs": None, "steps": None, **overrides}
    r = choose_recipe(RECIPES, recipe, **overrides)
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (and at least one): {len(images)} and {len(labels)}")
    device = device or get_device()
    rng = seed_everything(seed)
    model = FashionClassifier(channels=r.channels, hidden=r.hidden).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=1e-4)
    steps = r.steps or r.epochs * -(-len(images) // r.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr, total_steps=steps, pct_start=0.15)
    model.train()
    bar, done, budget, epochs_done = progress(total=steps, desc=desc), 0, TimeBudget(max_minutes), 0
    while done < steps and not (epochs_done and budget.spent()):
        for x, y in tensor_batches(images, labels, batch_size=r.batch_size, shuffle=True, generator=rng):
            if done == steps:
                break
            done += 1
            if r.flip:  # a mirrored shirt is still a shirt
                mask = torch.rand(len(x), generator=rng) < 0.5
                x = torch.where(mask[:, None, None, None], x.flip(3), x)
            loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        epochs_done += 1
    bar.close()
    model.epochs_done = epochs_done
    model.steps_done = done
    return model.eval()


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 250) -> float:
    """Top-1 accuracy of a classifier on images in [0, 1] (batches of 250: see ``evaluation.classifier_outputs``)."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (and at least one): {len(images)} and {len(labels)}")
    device = next(model.parameters()).device
    correct = 0
    with evaluating(model):
        for start in range(0, len(images), batch_size):
            logits = model(images[start:start + batch_size].to(device))
            correct += (logits.argmax(1).cpu() == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


def train_classifier(
    out: Path, recipe: str | ClassifierRecipe = "ship", seed: int = 0, limit: int | None = None,
    epochs: int | None = None, max_minutes: float | None = None,
) -> dict[str, Any]:
    """Train and test the FID-FMNIST classifier; write it and its reference statistics to ``out``; return the card.

    ``recipe`` is a name of :data:`RECIPES` or a :class:`ClassifierRecipe`; ``epochs`` replaces its length.
    """
    out = Path(out)
    device = get_device()
    r = choose_recipe(RECIPES, recipe, **({"epochs": epochs, "steps": None} if epochs else {}))  # epochs replace steps
    x_train, y_train = image_tensors("fashion-mnist", train=True)
    x_test, y_test = image_tensors("fashion-mnist", train=False)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    start = time.perf_counter()
    model = fit_classifier(x_train, y_train, r, seed=seed, device=device, max_minutes=max_minutes)
    seconds = time.perf_counter() - start
    test_acc = accuracy(model, x_test, y_test)
    # FID-FMNIST reference statistics (train features) and the floor: test images against them.
    mu, sigma = evaluation.feature_stats(evaluation.classifier_outputs(model, x_train)[0])
    floor = evaluation.fid_fmnist(x_test, model, (mu, sigma))
    card = {
        "task": "Fashion-MNIST classifier; its penultimate features define FID-FMNIST (notebook 02)",
        "data": f"Fashion-MNIST train ({len(x_train):,} images), random horizontal flips",
        "training": {"epochs": model.epochs_done, "batch_size": r.batch_size, "steps": model.steps_done,
                     "recipe": asdict(r), "optimizer": f"AdamW, one-cycle learning rate to {r.lr:g}", "seed": seed},
        **training_time(seconds, model.epochs_done, device),
        "test_accuracy": round(test_acc, 4),
        "test_images": len(x_test),
        "fid_fmnist_floor": {"value": round(floor, 3), "what": f"{len(x_test):,} test images vs the train statistics"},
        "command": repeat_command("classifier", recipe, model.epochs_done, seed),
    }
    save_checkpoint(model.cpu(), out / CLASSIFIER_NAME, card)
    key = reference_stats.training_images_key() if limit is None else {
        "source": "tensor", "images_sha256": reference_stats.images_digest(x_train), "images": len(x_train)}
    reference_stats.save_reference(mu, sigma, out / reference_stats.REFERENCE_NAME, model, key)
    print(f"classifier: test accuracy {test_acc:.4f}, FID-FMNIST floor {floor:.3f}, {seconds:.0f} s -> {out}")
    return card
