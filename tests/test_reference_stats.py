"""course_utils.reference_stats: FID-FMNIST's reference statistics, keyed, looked up in order, never stale."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils import checkpoints, evaluation, reference_stats
from course_utils.classifier import FashionClassifier
from tests import image_support

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


@pytest.fixture(scope="module")
def tiny_classifier():
    return image_support.tiny_classifier()


_images = image_support.random_images


def _features_mean(classifier, images: torch.Tensor) -> torch.Tensor:
    return evaluation.feature_stats(evaluation.classifier_outputs(classifier, images)[0])[0]


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """An empty shipped folder and data cache."""
    shipped, cache = tmp_path / "shipped", tmp_path / "data"
    shipped.mkdir()
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", shipped)
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    return shipped, cache


def test_reference_for_given_images_is_cached_under_their_content(tiny_classifier, folders):
    _, cache = folders
    subset, other = _images(50, 3), _images(80, 4)
    mu, sigma = reference_stats.load_or_compute(tiny_classifier, subset)
    files = sorted(p.name for p in (cache / "cache").iterdir())
    assert len(files) == 2 and files[1].endswith("_50.safetensors")
    again = reference_stats.load_or_compute(tiny_classifier, subset)
    assert torch.equal(mu, again[0]) and torch.equal(sigma, again[1])
    # other images: other statistics, never the subset's
    mu_other, _ = reference_stats.load_or_compute(tiny_classifier, other)
    assert not torch.allclose(mu_other, mu)
    assert torch.allclose(mu_other, _features_mean(tiny_classifier, other))


def test_a_subset_never_poisons_the_default_reference(tiny_classifier, folders, monkeypatch):
    subset = _images(50, 5)
    reference_stats.load_or_compute(tiny_classifier, subset)
    calls = []
    full = _images(120, 6)

    def fake_training_images(dataset, train):
        calls.append((dataset, train))
        return full, torch.zeros(len(full), dtype=torch.long)

    monkeypatch.setattr("course_utils.datasets.image_tensors", fake_training_images)
    mu, _ = reference_stats.load_or_compute(tiny_classifier)  # the default: the training images
    assert calls == [("fashion-mnist", True)]
    assert torch.allclose(mu, _features_mean(tiny_classifier, full))
    reference_stats.load_or_compute(tiny_classifier)  # now cached: no second load
    assert len(calls) == 1


def _write_reference(folder, classifier, key, mu_value: float):
    mu, sigma = torch.full((16,), mu_value, dtype=torch.float64), torch.eye(16, dtype=torch.float64)
    reference_stats.save_reference(mu, sigma, folder / reference_stats.REFERENCE_NAME, classifier, key)


def test_lookup_order_shipped_first_then_cache(tiny_classifier, folders):
    shipped, cache = folders
    key = reference_stats.training_images_key()
    _write_reference(cache / "cache", tiny_classifier, key, 2.0)
    assert reference_stats.load_or_compute(tiny_classifier)[0][0].item() == 2.0
    _write_reference(shipped, tiny_classifier, key, 1.0)
    assert reference_stats.load_or_compute(tiny_classifier)[0][0].item() == 1.0  # shipped wins
    assert reference_stats.load_or_compute(tiny_classifier, cache_dir=cache / "cache")[0][0].item() == 2.0


def test_stale_references_are_ignored(tiny_classifier, folders, monkeypatch):
    shipped, _ = folders
    other = FashionClassifier(channels=(4, 8, 8), hidden=16)
    _write_reference(shipped, other, reference_stats.training_images_key(), 1.0)  # another classifier's
    wrong_count = {**reference_stats.training_images_key(), "images": 59_000}
    _write_reference(shipped / "b", tiny_classifier, wrong_count, 3.0)
    full = _images(40, 7)
    monkeypatch.setattr("course_utils.datasets.image_tensors", lambda dataset, train: (full, None))
    mu, _ = reference_stats.load_or_compute(tiny_classifier)
    assert mu[0].item() not in (1.0, 3.0)
    assert reference_stats.load_or_compute(tiny_classifier, cache_dir=shipped / "b")[0][0].item() != 3.0
    # a card edited by hand (the checksum no longer matches) is not trusted either
    card = shipped / f"{reference_stats.REFERENCE_NAME}.json"
    meta = json.loads(card.read_text())
    meta["classifier_fingerprint"] = reference_stats.model_fingerprint(tiny_classifier)
    card.write_text(json.dumps(meta))
    assert reference_stats.load_or_compute(tiny_classifier)[0][0].item() == 1.0  # fingerprint now matches, sha too
    meta["weights_sha256"] = "0" * 64
    card.write_text(json.dumps(meta))
    assert reference_stats.load_or_compute(tiny_classifier)[0][0].item() != 1.0


def test_the_keys_follow_the_weights_and_the_images(tiny_classifier):
    other = FashionClassifier(channels=(4, 8, 8), hidden=16)
    assert reference_stats.model_fingerprint(tiny_classifier) == reference_stats.model_fingerprint(tiny_classifier)
    assert reference_stats.model_fingerprint(other) != reference_stats.model_fingerprint(tiny_classifier)
    a = _images(4, 0)
    assert reference_stats.images_digest(a) == reference_stats.images_digest(a.clone())
    assert reference_stats.images_digest(a) != reference_stats.images_digest(a[:3])  # the shape counts
    b = a.clone()
    b[0, 0, 0, 0] += 1e-3
    assert reference_stats.images_digest(a) != reference_stats.images_digest(b)
    key = reference_stats.training_images_key()
    assert key["source"] == reference_stats.TRAIN_IMAGES and len(key["images_sha256"]) == 64
