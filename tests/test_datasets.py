"""course_utils.datasets: torchvision on the verified cache, whole splits as tensors, batches, the text files."""

from __future__ import annotations

import pytest
import torch

from course_utils import data, datasets
from tests.data_support import private_cache, require_cached

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)


def test_unknown_names_are_clear_errors():
    with pytest.raises(KeyError, match="not a text data set"):
        datasets.load_text("mnist")
    with pytest.raises(KeyError, match="unknown image data set 'cifar'"):
        datasets.image_tensors("cifar")


def test_tensor_batches_cover_every_row_once():
    x, y = torch.arange(10).float(), torch.arange(10)
    batches = list(datasets.tensor_batches(x, y, batch_size=4, generator=torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))
    assert all(torch.equal(bx.long(), by) for bx, by in batches)
    assert len(list(datasets.tensor_batches(x, batch_size=4, drop_last=True))) == 2
    with pytest.raises(ValueError, match="differ in length"):
        next(datasets.tensor_batches(x, y[:5], batch_size=2))
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        next(datasets.tensor_batches(x, batch_size=0))
    assert [b[0].tolist() for b in datasets.tensor_batches(x[:5], batch_size=2, shuffle=False)] == [
        [0.0, 1.0], [2.0, 3.0], [4.0]]


# --- the real files (present after `make data`; CI copies ../shared/data in) ----------


def test_torchvision_reads_the_cached_fashion_mnist_offline():
    require_cached("fashion-mnist/test-images")
    require_cached("fashion-mnist/test-labels")
    ds = datasets.fashion_mnist(train=False)
    assert len(ds) == 10_000
    image, label = ds[0]
    assert image.size == (28, 28) and label == 9  # the first test image is an ankle boot
    x, y = datasets.image_tensors("fashion-mnist", train=False)
    assert x.shape == (10_000, 1, 28, 28) and x.min() == 0.0 and x.max() == 1.0  # bytes / 255
    assert x.mean().item() == pytest.approx(0.28685, abs=1e-5)
    assert y[:5].tolist() == [9, 2, 1, 1, 6] and y.bincount().tolist() == [1000] * 10
    # the fast path and torchvision's PIL images hold the same pixels
    assert x[0, 0].sum().item() == pytest.approx(sum(image.tobytes()) / 255, rel=1e-6)


def test_mnist_test_split_loads_without_the_train_split():
    require_cached("mnist/test-images")
    require_cached("mnist/test-labels")
    x, y = datasets.image_tensors("mnist", train=False)
    assert x.shape == (10_000, 1, 28, 28)
    assert y.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.skipif(not data.SYSTEM_FASHION_MNIST.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_copy_installs_into_an_empty_cache(tmp_path, monkeypatch):
    cache = private_cache(tmp_path, monkeypatch)
    path = data.fetch("fashion-mnist/test-labels", download=False, verbose=False)
    assert path == cache / "FashionMNIST/raw/t10k-labels-idx1-ubyte"
    assert data.check_content(data.FILES["fashion-mnist/test-labels"], path) is None
    ds = datasets.fashion_mnist(train=False)  # the test split alone is enough for torchvision
    assert len(ds) == 10_000 and not (cache / "FashionMNIST/raw/train-images-idx3-ubyte").exists()


def test_text_loaders():
    require_cached("names")
    require_cached("tinyshakespeare")
    names = datasets.load_names()
    assert len(names) == 32_033 and len(set(names)) == 29_494
    text = datasets.load_text("tinyshakespeare")
    assert len(text) == 1_115_394 and len(set(text)) == 65
