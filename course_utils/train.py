"""Training scripts for the checkpoints the course ships (notebook 02).

    python -m course_utils.train classifier   # the FID-FMNIST classifier (about 5 min on 2 CPU cores)
    python -m course_utils.train gan          # the conditional DCGAN generator

Each run is seeded (the same command on the same hardware gives the same
weights), shows a progress bar and writes ``NAME.safetensors`` and a
``NAME.json`` card (architecture, data, steps, seconds, hardware, measured
quality) to ``--out`` (default ``data/checkpoints``). The generator's card
records its FID-FMNIST at the end and an FID-over-training curve; the
classifier's its test accuracy and the FID-FMNIST floor (test vs train).

:func:`fit_classifier`, :func:`accuracy` and :func:`gan_step` are also used in
notebook 02 (the augmentation experiment and the DCGAN training loop).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils import metrics
from course_utils.checkpoints import SHIPPED_DIR, load_checkpoint, save_checkpoint, save_tensors
from course_utils.data import image_tensors, tensor_batches
from course_utils.models import (
    Discriminator,
    FashionClassifier,
    Generator,
    dcgan_init,
    generate,
    num_parameters,
)
from course_utils.progress import progress
from course_utils.runtime import get_device, hardware_name, seed_everything

CLASSIFIER_NAME = "fmnist_classifier"
GENERATOR_NAME = "cgan_generator"
FID_SEED = 1234  # the noise seed of every FID-FMNIST measurement in a card


def default_out() -> Path:
    return SHIPPED_DIR


def hardware(device: torch.device) -> str:
    """A one-line description of what a run used: GPU name, or CPU model, cores and torch threads."""
    name = hardware_name(device)
    if device.type == "cuda":
        return f"{name} (CUDA)"
    return f"{name}, {torch.get_num_threads()} torch threads"


# --- the classifier ------------------------------------------------------------------------------


def fit_classifier(
    images: torch.Tensor, labels: torch.Tensor, epochs: int | None = None, seed: int = 0, batch_size: int = 128,
    lr: float = 2e-3, flip: bool = True, device: torch.device | None = None, desc: str = "classifier",
    steps: int | None = None, **config: Any,
) -> FashionClassifier:
    """Train a :class:`FashionClassifier` on images in [0, 1] (AdamW, one-cycle learning rate, random flips).

    Give ``epochs`` or ``steps`` (a fixed number of updates, whatever the data
    size: the fair budget when comparing training sets of different sizes).
    """
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs and steps")
    device = device or get_device()
    rng = seed_everything(seed)
    model = FashionClassifier(**config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    per_epoch = -(-len(images) // batch_size)
    steps = steps or epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    model.train()
    bar, done = progress(total=steps, desc=desc), 0
    for _ in range(-(-steps // per_epoch)):
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
    bar.close()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of a classifier on images in [0, 1]."""
    device = next(model.parameters()).device
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


def train_classifier(
    epochs: int = 12, seed: int = 0, out: Path | None = None, limit: int | None = None, batch_size: int = 128,
) -> dict[str, Any]:
    """Train, test and ship the FID-FMNIST classifier and its reference statistics; return the card."""
    out = Path(out or default_out())
    device = get_device()
    x_train, y_train = image_tensors("fashion-mnist", train=True)
    x_test, y_test = image_tensors("fashion-mnist", train=False)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    start = time.perf_counter()
    model = fit_classifier(x_train, y_train, epochs, seed=seed, batch_size=batch_size, device=device)
    seconds = time.perf_counter() - start
    test_acc = accuracy(model, x_test, y_test)
    # FID-FMNIST reference statistics (train features) and the floor: test images against them.
    feats, _ = metrics.classifier_outputs(model, x_train)
    mu, sigma = metrics.feature_stats(feats)
    floor = metrics.fid_fmnist(x_test, model, (mu, sigma))
    card = {
        "task": "Fashion-MNIST classifier; its penultimate features define FID-FMNIST (notebook 02)",
        "data": f"Fashion-MNIST train ({len(x_train):,} images), random horizontal flips",
        "training": {"epochs": epochs, "batch_size": batch_size, "steps": epochs * -(-len(x_train) // batch_size),
                     "optimizer": "AdamW, one-cycle learning rate to 2e-3", "seed": seed},
        "seconds": round(seconds, 1),
        "hardware": hardware(device),
        "test_accuracy": round(test_acc, 4),
        "test_images": len(x_test),
        "fid_fmnist_floor": {"value": round(floor, 3), "what": f"{len(x_test):,} test images vs the train statistics"},
        "command": f"python -m course_utils.train classifier --epochs {epochs} --seed {seed}",
    }
    save_checkpoint(model.cpu(), out / CLASSIFIER_NAME, card)
    save_tensors({"mu": mu, "sigma": sigma}, out / metrics.REFERENCE_NAME, {
        "what": "FID-FMNIST reference statistics: mean and covariance of the classifier's features "
                f"of the {len(x_train):,} Fashion-MNIST training images",
        "classifier_fingerprint": metrics.model_fingerprint(model),
        "images": len(x_train),
    })
    print(f"classifier: test accuracy {test_acc:.4f}, FID-FMNIST floor {floor:.3f}, {seconds:.0f} s")
    return card


# --- the conditional DCGAN -----------------------------------------------------------------------


def gan_step(
    G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
    real: torch.Tensor, labels: torch.Tensor | None, real_label: float = 0.9,
) -> dict[str, float]:
    """One DCGAN update: D on real and fake, then G with the non-saturating loss.

    ``real`` images are in [-1, 1]; ``labels`` are class indices (None for an
    unconditional GAN). Returns the losses and the mean D(x), D(G(z)).
    """
    bce = nn.BCEWithLogitsLoss()
    n = len(real)
    z = torch.randn(n, G.config.z_dim, device=real.device)
    fake = G(z, labels)
    # discriminator: real -> real_label (one-sided label smoothing), fake -> 0
    d_real = D(real, labels)
    d_fake = D(fake.detach(), labels)
    loss_d = bce(d_real, torch.full_like(d_real, real_label)) + bce(d_fake, torch.zeros_like(d_fake))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    # generator: maximise log D(G(z)) (non-saturating), i.e. label the fakes "real"
    d_gen = D(fake, labels)
    loss_g = bce(d_gen, torch.ones_like(d_gen))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(d_real).mean().item(), "d_fake": torch.sigmoid(d_fake).mean().item()}


def balanced_labels(n: int, num_classes: int = 10) -> torch.Tensor:
    """``[n]`` class indices, each class equally often (as in Fashion-MNIST)."""
    return torch.arange(n) % num_classes


def generator_fid(
    G: Generator, classifier: FashionClassifier, reference: tuple[torch.Tensor, torch.Tensor], n: int,
    seed: int = FID_SEED,
) -> float:
    """FID-FMNIST of ``n`` samples of ``G`` (balanced labels if conditional), noise seeded by ``seed``."""
    labels = balanced_labels(n, G.config.num_classes) if G.config.num_classes else None
    images = generate(G, n, labels, rng=torch.Generator().manual_seed(seed))
    return metrics.fid_fmnist(images, classifier, reference, value_range=(-1, 1))


def train_gan(
    epochs: int = 20, seed: int = 0, out: Path | None = None, limit: int | None = None, batch_size: int = 128,
    lr: float = 2e-4, real_label: float = 0.9, curve_samples: int = 2000, fid_samples: int = 10_000,
    num_classes: int = 10, z_dim: int = 64, channels: int = 64, max_minutes: float | None = None,
) -> dict[str, Any]:
    """Train the conditional DCGAN on Fashion-MNIST and ship its generator; return the card.

    FID-FMNIST is measured with the shipped classifier: on ``curve_samples``
    after every epoch (the curve in the card) and on ``fid_samples`` at the end.
    With ``max_minutes`` training stops after the epoch that passes that time
    (the card records the epochs done; ``--epochs`` with that number reproduces the run).
    """
    out = Path(out or default_out())
    device = get_device()
    classifier, clf_card = load_checkpoint(out / CLASSIFIER_NAME, device=device)
    reference = metrics.reference_stats(classifier, cache_dir=out)
    x_train, y_train = image_tensors("fashion-mnist", train=True)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    x_train = x_train * 2 - 1  # tanh range
    rng = seed_everything(seed)
    G = Generator(z_dim=z_dim, channels=channels, num_classes=num_classes).to(device)
    D = Discriminator(z_dim=z_dim, channels=channels, num_classes=num_classes).to(device)
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    steps_per_epoch = len(x_train) // batch_size
    curve = {"epoch": [0], "fid": [round(generator_fid(G, classifier, reference, curve_samples), 2)]}
    history: dict[str, list[float]] = {"loss_d": [], "loss_g": [], "d_real": [], "d_fake": []}
    train_seconds, step, wall_start, done = 0.0, 0, time.perf_counter(), 0
    bar = progress(total=epochs * steps_per_epoch, desc="cGAN")
    for epoch in range(1, epochs + 1):
        if max_minutes is not None and time.perf_counter() - wall_start > 60 * max_minutes:
            bar.write(f"time limit of {max_minutes} minutes reached after {done} epochs")
            break
        done = epoch
        start = time.perf_counter()
        sums = dict.fromkeys(history, 0.0)
        for real, labels in tensor_batches(x_train, y_train, batch_size=batch_size, generator=rng, drop_last=True):
            stats = gan_step(G, D, opt_g, opt_d, real.to(device), labels.to(device) if num_classes else None,
                             real_label)
            for k in sums:
                sums[k] += stats[k]
            step += 1
            bar.update(1)
            bar.set_postfix(d=f"{stats['loss_d']:.2f}", g=f"{stats['loss_g']:.2f}")
        train_seconds += time.perf_counter() - start
        for k in history:
            history[k].append(round(sums[k] / steps_per_epoch, 4))
        curve["epoch"].append(epoch)
        curve["fid"].append(round(generator_fid(G, classifier, reference, curve_samples), 2))
        bar.write(f"epoch {epoch}: loss D {history['loss_d'][-1]:.3f} G {history['loss_g'][-1]:.3f}, "
                  f"D(x) {history['d_real'][-1]:.2f} D(G(z)) {history['d_fake'][-1]:.2f}, "
                  f"FID-FMNIST ({curve_samples}) {curve['fid'][-1]:.1f}")
    bar.close()
    epochs = done
    fid = generator_fid(G, classifier, reference, fid_samples)
    card = {
        "task": "conditional DCGAN generator for Fashion-MNIST (notebook 02)",
        "data": f"Fashion-MNIST train ({len(x_train):,} images with labels), scaled to [-1, 1]",
        "training": {
            "epochs": epochs, "steps": step, "batch_size": batch_size, "seed": seed,
            "optimizer": f"Adam lr {lr}, betas (0.5, 0.999), for G and D",
            "loss": "BCEWithLogits, non-saturating G loss, one-sided label smoothing "
                    f"(real label {real_label}), DCGAN N(0, 0.02) init",
            "discriminator": {"num_parameters": num_parameters(D)},
        },
        "seconds": round(train_seconds, 1),
        "seconds_per_epoch": round(train_seconds / max(epochs, 1), 1),
        "hardware": hardware(device),
        "fid_fmnist": {
            "value": round(fid, 3), "samples": fid_samples, "noise_seed": FID_SEED, "labels": "balanced",
            "classifier": f"{CLASSIFIER_NAME}.safetensors (sha256 {clf_card['weights_sha256'][:12]}…)",
            "reference": "Fashion-MNIST train features",
        },
        "fid_curve": {**curve, "samples": curve_samples, "noise_seed": FID_SEED},
        "history": history,
        "command": f"python -m course_utils.train gan --epochs {epochs} --seed {seed}",
    }
    save_checkpoint(G.cpu(), out / GENERATOR_NAME, card)
    print(f"generator: FID-FMNIST ({fid_samples} samples) {fid:.2f} after {epochs} epochs, "
          f"{train_seconds:.0f} s of training")
    return card


# --- command line -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.train", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("classifier", "gan"), help="which checkpoint to train")
    parser.add_argument("--epochs", type=int, default=None, help="default: 12 (classifier), 20 (gan)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: data/checkpoints)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images (quick tests)")
    parser.add_argument("--curve-samples", type=int, default=2000, help="gan: samples per FID point of the curve")
    parser.add_argument("--fid-samples", type=int, default=10_000, help="gan: samples of the final FID")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--max-minutes", type=float, default=None, help="gan: stop after the epoch that passes this")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what == "classifier":
        train_classifier(epochs=args.epochs or 12, seed=args.seed, out=args.out, limit=args.limit)
    else:
        train_gan(epochs=args.epochs or 20, seed=args.seed, out=args.out, limit=args.limit,
                  curve_samples=args.curve_samples, fid_samples=args.fid_samples, max_minutes=args.max_minutes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
