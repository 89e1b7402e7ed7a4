"""course_utils.models: shapes, conditioning, initialisation and rebuilding from a config."""

from __future__ import annotations

import pytest
import torch

from course_utils import models
from course_utils.models import (
    Discriminator,
    FashionClassifier,
    Generator,
    ToyDiscriminator,
    ToyGenerator,
    architecture,
    build_model,
    dcgan_init,
    generate,
)


def test_generator_makes_28x28_images_in_tanh_range():
    G = Generator(z_dim=8, channels=8)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1


def test_discriminator_gives_one_logit_per_image():
    D = Discriminator(channels=8)
    assert D(torch.rand(4, 1, 28, 28) * 2 - 1).shape == (4,)


def test_conditional_models_need_labels_and_use_them():
    G = Generator(z_dim=8, channels=8, num_classes=10).eval()
    D = Discriminator(channels=8, num_classes=10).eval()
    z = torch.randn(3, 8)
    with pytest.raises(ValueError, match="pass labels"):
        G(z)
    with pytest.raises(ValueError, match="pass labels"):
        D(torch.zeros(3, 1, 28, 28))
    a, b = G(z, torch.tensor([0, 0, 0])), G(z, torch.tensor([7, 7, 7]))
    assert not torch.allclose(a, b)
    assert D(a, torch.tensor([1, 2, 3])).shape == (3,)
    with pytest.raises(ValueError, match="unconditional"):
        Generator(z_dim=8, channels=8)(z, torch.tensor([0, 1, 2]))


def test_dcgan_init_sets_small_weights():
    G = Generator(z_dim=16, channels=16)
    G.apply(dcgan_init)
    conv = G.net[0].weight
    assert abs(conv.std().item() - 0.02) < 0.004
    bn = G.net[1]
    assert abs(bn.weight.mean().item() - 1) < 0.01 and bn.bias.abs().max() == 0


def test_generate_is_seeded_batched_and_restores_train_mode():
    G = Generator(z_dim=8, channels=8, num_classes=10)
    labels = torch.arange(25) % 10
    a = generate(G, 25, labels, rng=torch.Generator().manual_seed(0), batch_size=10)
    b = generate(G, 25, labels, rng=torch.Generator().manual_seed(0), batch_size=25)
    assert a.shape == (25, 1, 28, 28) and torch.allclose(a, b, atol=1e-6)
    assert G.training


def test_toy_models_and_pacgan_packs():
    G, D = ToyGenerator(), ToyDiscriminator(pack=4)
    x = G(torch.randn(8, 2))
    assert x.shape == (8, 2) and D(x).shape == (2,)
    with pytest.raises(ValueError, match="multiple of pack"):
        D(torch.randn(6, 2))


def test_classifier_features_and_logits():
    clf = FashionClassifier().eval()
    x = torch.rand(3, 1, 28, 28)
    assert clf.features(x).shape == (3, 128) and clf(x).shape == (3, 10)
    assert models.num_parameters(clf) * 4 < 2_000_000  # float32 weights under 2 MB


@pytest.mark.parametrize("model", [
    Generator(z_dim=8, channels=8, num_classes=10), Discriminator(channels=4), FashionClassifier(channels=(4, 8, 8)),
    ToyGenerator(hidden=16), ToyDiscriminator(pack=2),
], ids=lambda m: type(m).__name__)
def test_architecture_round_trips(model):
    arch = architecture(model)
    rebuilt = build_model(arch)
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_unknown_architecture_and_bad_config_are_clear():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model({"class": "ResNet", "config": {}})
    with pytest.raises(TypeError, match="config must be"):
        Generator(config=3)
