"""The Fashion-MNIST classifier: its features define FID-FMNIST, its accuracy judges generated data.

Taught in notebook 02, section 4 (the FID-FMNIST classifier) and section 5
(the data-augmentation experiment, with a narrower copy).

- :class:`FashionClassifier`: a small CNN; ``features(x)`` is the 128-d
  penultimate activation behind FID-FMNIST (:mod:`course_utils.evaluation`; its reference
  statistics: :mod:`course_utils.reference_stats`).
- :func:`fit_classifier`, :func:`accuracy`: training and testing.
- :func:`train_classifier`: what ``python -m course_utils.train classifier`` runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils import evaluation, reference_stats
from course_utils.checkpoints import register_model, save_checkpoint
from course_utils.configs import make_config, require_positive, require_rate
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


def fit_classifier(
    images: torch.Tensor, labels: torch.Tensor, epochs: int | None = None, seed: int = 0, batch_size: int = 128,
    lr: float = 2e-3, flip: bool = True, device: torch.device | None = None, desc: str = "classifier",
    steps: int | None = None, max_minutes: float | None = None, **config: Any,
) -> FashionClassifier:
    """Train a :class:`FashionClassifier` on images in [0, 1] (AdamW, one-cycle learning rate, random flips).

    Give ``epochs`` or ``steps`` (a fixed number of updates, whatever the data
    size: the fair budget when comparing training sets of different sizes).
    With ``max_minutes`` training stops at the end of the first epoch that
    passes that time (``model.epochs_done`` says how many ran).
    """
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs and steps")
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (and at least one): {len(images)} and {len(labels)}")
    device = device or get_device()
    rng = seed_everything(seed)
    model = FashionClassifier(**config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    per_epoch = -(-len(images) // batch_size)
    steps = steps or epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    model.train()
    bar, done, budget, epochs_done = progress(total=steps, desc=desc), 0, TimeBudget(max_minutes), 0
    while done < steps and not (epochs_done and budget.spent()):
        for x, y in tensor_batches(images, labels, batch_size=batch_size, shuffle=True, generator=rng):
            if done == steps:
                break
            done += 1
            if flip:  # a mirrored shirt is still a shirt
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
    out: Path, epochs: int = 12, seed: int = 0, limit: int | None = None, batch_size: int = 128,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """Train and test the FID-FMNIST classifier; write it and its reference statistics to ``out``; return the card."""
    out = Path(out)
    device = get_device()
    x_train, y_train = image_tensors("fashion-mnist", train=True)
    x_test, y_test = image_tensors("fashion-mnist", train=False)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    start = time.perf_counter()
    model = fit_classifier(x_train, y_train, epochs, seed=seed, batch_size=batch_size, device=device,
                           max_minutes=max_minutes)
    seconds = time.perf_counter() - start
    test_acc = accuracy(model, x_test, y_test)
    # FID-FMNIST reference statistics (train features) and the floor: test images against them.
    mu, sigma = evaluation.feature_stats(evaluation.classifier_outputs(model, x_train)[0])
    floor = evaluation.fid_fmnist(x_test, model, (mu, sigma))
    card = {
        "task": "Fashion-MNIST classifier; its penultimate features define FID-FMNIST (notebook 02)",
        "data": f"Fashion-MNIST train ({len(x_train):,} images), random horizontal flips",
        "training": {"epochs": model.epochs_done, "batch_size": batch_size, "steps": model.steps_done,
                     "optimizer": "AdamW, one-cycle learning rate to 2e-3", "seed": seed},
        **training_time(seconds, model.epochs_done, device),
        "test_accuracy": round(test_acc, 4),
        "test_images": len(x_test),
        "fid_fmnist_floor": {"value": round(floor, 3), "what": f"{len(x_test):,} test images vs the train statistics"},
        "command": f"python -m course_utils.train classifier --epochs {model.epochs_done} --seed {seed}",
    }
    save_checkpoint(model.cpu(), out / CLASSIFIER_NAME, card)
    key = reference_stats.training_images_key() if limit is None else {
        "source": "tensor", "images_sha256": reference_stats.images_digest(x_train), "images": len(x_train)}
    reference_stats.save_reference(mu, sigma, out / reference_stats.REFERENCE_NAME, model, key)
    print(f"classifier: test accuracy {test_acc:.4f}, FID-FMNIST floor {floor:.3f}, {seconds:.0f} s -> {out}")
    return card
