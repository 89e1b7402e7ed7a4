"""Progress bars for any loop that takes more than a few seconds.

They use ``tqdm.auto`` (a widget in Jupyter, text in a terminal) and go quiet
when ``COURSE_QUIET=1`` is set (as ``make test`` does) or, with ``COURSE_QUIET``
unset, when ``CI`` is set, so CI logs stay short.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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
