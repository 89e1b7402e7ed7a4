"""course_utils.train (tiny runs of the training script) and the checkpoints the course ships."""

from __future__ import annotations

import pytest
import torch

from course_utils import metrics, train
from course_utils.checkpoints import file_sha256, load_checkpoint, read_metadata
from course_utils.data import REPO_ROOT, image_tensors
from course_utils.models import Discriminator, FashionClassifier, Generator, generate

SHIPPED = REPO_ROOT / "data" / "checkpoints"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck")
    assert train.main(["classifier", "--epochs", "1", "--limit", "256", "--out", str(out)]) == 0
    gan = ["gan", "--epochs", "1", "--limit", "256", "--out", str(out), "--curve-samples", "32", "--fid-samples", "48"]
    assert train.main(gan) == 0
    first = file_sha256(out / "cgan_generator.safetensors")
    assert train.main(gan) == 0
    return out, first


def test_training_script_writes_weights_and_cards(tiny_run):
    out, _ = tiny_run
    for name in ("fmnist_classifier", "cgan_generator", "fmnist_fid_reference"):
        assert (out / f"{name}.safetensors").exists() and (out / f"{name}.json").exists()
    clf = read_metadata(out / "fmnist_classifier")
    for key in ("architecture", "data", "training", "seconds", "hardware", "test_accuracy", "fid_fmnist_floor",
                "weights_sha256", "torch_version", "saved_at"):
        assert key in clf, key
    gen = read_metadata(out / "cgan_generator")
    for key in ("architecture", "data", "training", "seconds", "hardware", "fid_fmnist", "fid_curve", "history"):
        assert key in gen, key
    assert gen["training"]["steps"] == 2 and gen["fid_fmnist"]["samples"] == 48
    assert gen["fid_curve"]["epoch"] == [0, 1] and len(gen["fid_curve"]["fid"]) == 2
    G, _ = load_checkpoint(out / "cgan_generator")
    assert isinstance(G, Generator) and G.config.num_classes == 10


def test_training_script_is_reproducible(tiny_run):
    out, first = tiny_run
    assert file_sha256(out / "cgan_generator.safetensors") == first


def test_gan_step_moves_both_players():
    torch.manual_seed(0)
    G, D = Generator(z_dim=8, channels=8, num_classes=10), Discriminator(channels=8, num_classes=10)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    before_g, before_d = G.net[0].weight.clone(), D.net[0].weight.clone()
    stats = train.gan_step(G, D, opt_g, opt_d, torch.rand(16, 1, 28, 28) * 2 - 1, torch.arange(16) % 10)
    assert set(stats) == {"loss_d", "loss_g", "d_real", "d_fake"} and 0 < stats["d_real"] < 1
    assert not torch.equal(before_g, G.net[0].weight) and not torch.equal(before_d, D.net[0].weight)


def test_fit_classifier_learns_a_small_subset():
    x, y = image_tensors("fashion-mnist", train=True)
    model = train.fit_classifier(x[:512], y[:512], epochs=2, seed=0, device=torch.device("cpu"))
    assert isinstance(model, FashionClassifier) and train.accuracy(model, x[512:1024], y[512:1024]) > 0.4


# --- the shipped checkpoints --------------------------------------------------------------------


@pytest.mark.skipif(not (SHIPPED / "fmnist_classifier.safetensors").exists(), reason="not trained yet")
def test_shipped_classifier_claims_hold():
    clf, meta = load_checkpoint(SHIPPED / "fmnist_classifier")
    assert (SHIPPED / "fmnist_classifier.safetensors").stat().st_size <= 2_000_000
    assert meta["test_accuracy"] >= 0.91
    x, y = image_tensors("fashion-mnist", train=False)
    assert abs(train.accuracy(clf, x[:2000], y[:2000]) - meta["test_accuracy"]) < 0.03
    ref = read_metadata(SHIPPED / "fmnist_fid_reference")
    assert ref["classifier_fingerprint"] == metrics.model_fingerprint(clf)


@pytest.mark.skipif(not (SHIPPED / "cgan_generator.safetensors").exists(), reason="not trained yet")
def test_shipped_generator_loads_and_card_is_complete():
    G, meta = load_checkpoint(SHIPPED / "cgan_generator")
    assert (SHIPPED / "cgan_generator.safetensors").stat().st_size <= 2_600_000
    assert meta["fid_fmnist"]["samples"] >= 5000
    curve = meta["fid_curve"]["fid"]
    assert len(curve) == meta["training"]["epochs"] + 1 and curve[-1] < curve[0] / 4
    images = generate(G, 20, torch.arange(20) % 10, rng=torch.Generator().manual_seed(0))
    assert images.shape == (20, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
