"""course_utils.classifier: the FID-FMNIST classifier, its training and its accuracy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.classifier import FashionClassifier, accuracy, fit_classifier
from course_utils.datasets import image_tensors

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest


def test_classifier_features_and_logits():
    torch.manual_seed(0)
    clf = FashionClassifier().eval()
    x = torch.rand(3, 1, 28, 28)
    assert clf.features(x).shape == (3, 128) and clf(x).shape == (3, 10)
    assert torch.allclose(clf(x), clf.head(clf.features(x)))  # eval: dropout is off
    standardised = (x - 0.2860) / 0.3530  # the Fashion-MNIST pixel mean and std
    assert torch.allclose(clf.features(x), torch.relu(clf.fc(clf.body(standardised))))
    assert sum(p.numel() for p in clf.parameters()) == 241_770  # the shipped size: about 1 MB of float32


def test_narrow_config_from_a_json_like_dict():
    clf = FashionClassifier({"channels": [16, 32, 64], "hidden": 64})
    assert clf.config.channels == (16, 32, 64) and clf.fc.out_features == 64
    with pytest.raises(TypeError, match="config must be"):
        FashionClassifier(config=3)


class _Fixed(nn.Module):
    """A 'classifier' that predicts the brightest pixel's row // 3 as the class."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        rows = x.flatten(1).argmax(1) // 28
        return nn.functional.one_hot(rows // 3, 10).float()


def test_accuracy_known_answer():
    x = torch.zeros(4, 1, 28, 28)
    for i, row in enumerate((0, 3, 6, 9)):
        x[i, 0, row, 5] = 1.0  # classes 0, 1, 2, 3
    assert accuracy(_Fixed(), x, torch.tensor([0, 1, 2, 3]), batch_size=3) == 1.0
    assert accuracy(_Fixed(), x, torch.tensor([0, 1, 5, 5])) == 0.5
    with pytest.raises(ValueError, match="as many labels"):
        accuracy(_Fixed(), x, torch.tensor([0]))


@pytest.fixture(scope="module")
def small_split():
    x, y = image_tensors("fashion-mnist", train=True)
    return x[:512], y[:512], x[512:1024], y[512:1024]


@pytest.mark.slow  # trains a CNN
def test_fit_classifier_learns_a_small_subset(small_split):
    x, y, x_val, y_val = small_split
    model = fit_classifier(x, y, epochs=4, seed=0, device=torch.device("cpu"))
    assert isinstance(model, FashionClassifier) and not model.training
    assert model.steps_done == 16 and model.epochs_done == 4  # 512 / 128 = 4 steps an epoch
    assert accuracy(model, x_val, y_val) > 0.5  # chance is 0.1
    again = fit_classifier(x, y, epochs=4, seed=0, device=torch.device("cpu"))
    assert torch.equal(model.head.weight, again.head.weight)  # seeded: the same weights


@pytest.mark.slow  # trains a CNN
def test_fit_classifier_steps_and_time_budget(small_split):
    x, y, _, _ = small_split
    model = fit_classifier(x, y, steps=5, seed=0, device=torch.device("cpu"))  # steps replace the epochs
    assert model.steps_done == 5
    capped = fit_classifier(x, y, epochs=3, seed=0, device=torch.device("cpu"), max_minutes=0)
    assert capped.epochs_done == 1 and capped.steps_done == 4  # stops at the first epoch boundary
    with pytest.raises(ValueError, match="exactly one"):
        fit_classifier(x, y, epochs=1, steps=1)
