"""The checkpoints the course ships in data/checkpoints: present, verified, and as good as their cards say.

These tests fail (never skip) when a shipped file is missing: the notebooks need them.
"""

from __future__ import annotations

import pytest
import torch

from course_utils import evaluation
from course_utils.checkpoints import SHIPPED_DIR, load_checkpoint, load_tensors, read_metadata
from course_utils.classifier import accuracy
from course_utils.data import image_tensors
from course_utils.gan import generate, generator_fid

SHIPPED = {  # name: largest size in bytes
    "fmnist_classifier": 1_000_000,
    "fmnist_fid_reference": 140_000,
    "cgan_generator": 2_400_000,
}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_files_exist_verify_and_are_small(name):
    weights = SHIPPED_DIR / f"{name}.safetensors"
    assert weights.exists(), f"{weights} is missing: the notebooks load it (git checkout data/checkpoints)"
    assert weights.stat().st_size <= SHIPPED[name]
    load_tensors(SHIPPED_DIR / name)  # raises on a checksum mismatch or a card of another format


def test_shipped_classifier_accuracy_matches_its_card_on_all_test_images():
    clf, meta = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    x, y = image_tensors("fashion-mnist", train=False)
    assert len(x) == meta["test_images"] == 10_000
    measured = accuracy(clf, x, y)
    assert abs(measured - meta["test_accuracy"]) <= 0.002, f"{measured:.4f} vs card {meta['test_accuracy']}"
    assert measured >= 0.92


def test_shipped_reference_belongs_to_the_shipped_classifier():
    clf, _ = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    ref = read_metadata(SHIPPED_DIR / "fmnist_fid_reference")
    assert ref["classifier_fingerprint"] == evaluation.model_fingerprint(clf)
    assert {k: ref[k] for k in ("source", "images_sha256", "images")} == evaluation.training_images_key()


def test_shipped_generator_card_and_samples():
    G, meta = load_checkpoint(SHIPPED_DIR / "cgan_generator")
    assert meta["fid_fmnist"]["samples"] >= 5000
    curve = meta["fid_curve"]["fid"]
    assert len(curve) == meta["training"]["epochs"] + 1 and curve[-1] < curve[0] / 50
    images = generate(G, 20, torch.arange(20) % 10, rng=torch.Generator().manual_seed(0))
    assert images.shape == (20, 1, 28, 28)
    clf, _ = load_checkpoint(SHIPPED_DIR / "fmnist_classifier")
    # 2,000 samples: a cheap check that the generator is the card's (the notebook recomputes the card's 10,000)
    fid = generator_fid(G, clf, evaluation.reference_stats(clf), 2000)
    assert fid < 2 * meta["fid_fmnist"]["value"]
