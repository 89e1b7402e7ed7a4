"""Progress bars for any loop that takes more than a few seconds, and time budgets for training commands (shared).

The bars use ``tqdm.auto`` (a widget in Jupyter, text in a terminal) and go
quiet when ``COURSE_QUIET=1`` is set (as ``make test`` does) or, with
``COURSE_QUIET`` unset, when ``CI`` is set, so CI logs stay short.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def quiet() -> bool:
    """True when progress bars should be hidden: ``COURSE_QUIET`` is 1/true/yes, or unset under CI."""
    value = os.environ.get("COURSE_QUIET")
    if value is None:
        return bool(os.environ.get("CI"))
    return value.strip().lower() in {"1", "true", "yes"}


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """``tqdm.auto.tqdm`` with the course's defaults; disabled when :func:`quiet`."""
    kwargs.setdefault("disable", quiet())
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)


class TimeBudget:
    """``--max-minutes`` for a training command: ``spent()`` turns true once the time is up.

    ``None`` is no limit. Training loops ask at the end of an epoch, so a run
    always finishes at least one epoch and stops at the first epoch boundary past the limit.
    """

    def __init__(self, minutes: float | None, clock: Callable[[], float] = time.perf_counter) -> None:
        if minutes is not None and minutes < 0:
            raise ValueError(f"max_minutes must be non-negative, got {minutes}")
        self.seconds = None if minutes is None else 60.0 * minutes
        self.clock = clock  # seconds; the tests pass a fake one
        self.start = clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def spent(self) -> bool:
        return self.seconds is not None and self.elapsed() >= self.seconds
