"""The course's data as PyTorch sees it: torchvision's image sets, whole splits as tensors, batches, the texts.

Taught in notebook 00 (looking at the data) and 01 (the fast path of
:func:`image_tensors` against a ``DataLoader``); every later notebook loads its
data here. Each file comes from the registry of :mod:`course_utils.data`:
verified by its checksum, read from the cache, offline first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from course_utils.data import data_dir, fetch

#: Fashion-MNIST's ten classes, in label order (label 9 is an ankle boot).
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
TEXTS = ("tinyshakespeare", "names")


def _image_root(dataset: str, train: bool) -> Path:
    split = "train" if train else "test"
    for name in (f"{dataset}/{split}-images", f"{dataset}/{split}-labels"):
        fetch(name, verbose=False)
    return data_dir()


def _one_split(base: type, folder: str) -> type:
    """A torchvision MNIST-style class that needs only the split it loads.

    torchvision checks for all four IDX files even when one split is asked for;
    offline, the course may have only the test split (MNIST in CI).
    """

    class OneSplit(base):
        @property
        def raw_folder(self) -> str:
            return os.path.join(self.root, folder, "raw")

        def _check_exists(self) -> bool:
            prefix = "train" if self.train else "t10k"
            return all(
                (Path(self.raw_folder) / f"{prefix}-{kind}-ubyte").exists()
                for kind in ("images-idx3", "labels-idx1")
            )

    OneSplit.__name__ = OneSplit.__qualname__ = base.__name__
    return OneSplit


def fashion_mnist(train: bool = True, transform: Any = None, target_transform: Any = None) -> Any:
    """torchvision's ``FashionMNIST`` on the verified cache (``download=False``, works offline)."""
    # imported here: torchvision adds about a second to every start-up, and only these two loaders need it
    from torchvision.datasets import FashionMNIST

    root = _image_root("fashion-mnist", train)
    cls = _one_split(FashionMNIST, "FashionMNIST")
    return cls(root, train=train, transform=transform, target_transform=target_transform, download=False)


def mnist(train: bool = False, transform: Any = None, target_transform: Any = None) -> Any:
    """torchvision's ``MNIST``. Only the test split is needed offline; train downloads."""
    # imported here: torchvision adds about a second to every start-up, and only these two loaders need it
    from torchvision.datasets import MNIST

    root = _image_root("mnist", train)
    return _one_split(MNIST, "MNIST")(root, train=train, transform=transform, target_transform=target_transform,
                                      download=False)


def image_tensors(dataset: str = "fashion-mnist", train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole split in memory: images float32 ``[N, 1, 28, 28]`` in [0, 1], labels int64.

    The fast path for training loops (one pass over Fashion-MNIST train: 0.7 s,
    against 3.4 s for a ``DataLoader`` with per-image ``ToTensor`` on 2 cores).
    """
    loaders = {"fashion-mnist": fashion_mnist, "mnist": mnist}
    if dataset not in loaders:
        raise KeyError(f"unknown image data set {dataset!r}; use one of {', '.join(loaders)}")
    ds = loaders[dataset](train=train)
    return ds.data.unsqueeze(1).float().div_(255.0), ds.targets.long()


def tensor_batches(
    *tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
    generator: torch.Generator | None = None, drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Mini-batches of in-memory tensors (one epoch), indexed rather than collated."""
    if not tensors:
        raise ValueError("tensor_batches needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


def load_text(name: str = "tinyshakespeare") -> str:
    """A registered text file as a string (``tinyshakespeare`` or ``names``)."""
    if name not in TEXTS:
        raise KeyError(f"{name!r} is not a text data set; use 'tinyshakespeare' or 'names'")
    return fetch(name, verbose=False).read_text(encoding="utf-8")


def load_names() -> list[str]:
    """The makemore names list: 32,033 lowercase names, in file order."""
    return [line for line in load_text("names").splitlines() if line]
