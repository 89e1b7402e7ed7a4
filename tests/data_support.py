"""What the tests of the data registry, its loaders and the bundle share: a toy registry entry and a private cache.

Used by ``test_data.py``, ``test_datasets.py`` and ``test_bundle.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from course_utils import data

CONTENT = b"IDX-like content for the tests\n" * 100
SHA = hashlib.sha256(CONTENT).hexdigest()


def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data cache for one test (``COURSE_DATA_DIR``)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(root))
    return root


def register(monkeypatch: pytest.MonkeyPatch, **overrides: object) -> data.DataFile:
    """Add a toy entry to the registry for one test (``toy``: :data:`CONTENT`, gzipped upstream)."""
    fields = dict(
        name="toy", dataset="toy", path="Toy/raw/toy-file", urls=("http://127.0.0.1:9/toy.gz",),
        size=len(CONTENT), sha256=SHA, gzip=True, dropins=("toy/toy-file.gz",),
    )
    fields.update(overrides)
    entry = data.DataFile(**fields)
    monkeypatch.setitem(data.FILES, entry.name, entry)
    return entry


def require_cached(name: str) -> None:
    """Skip the test unless the real registry file ``name`` is in the cache (after ``make data``)."""
    try:
        data.fetch(name, download=False, verbose=False)
    except data.DataUnavailableError:
        pytest.skip(f"{name} is not cached here (run: python -m course_utils.data fetch)")
