"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; two threads on a busy machine spin-wait at every small op.

    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def scoped_determinism() -> Iterator[None]:
    """seed_everything sets process-wide determinism switches; each test gets them back as they were."""
    from course_utils.runtime import determinism_state, restore_determinism

    saved = determinism_state()
    yield
    restore_determinism(saved)
