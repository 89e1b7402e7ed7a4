"""Checkers for the notebooks' exercises: right, or wrong with a specific hint.

An exercise is three cells: a stub the learner completes (``answer = ...`` or a
function whose body is ``raise NotImplementedError``), the reference solution
(tagged ``solution``, its source collapsed; ``make student`` removes it), and a
call to the checker. A checker given the unfinished stub answers "not done
yet", not with a traceback.

Every checker returns a :class:`CheckResult`, which shows as ``✅ right (exercise): ...``
or ``❌ wrong (exercise): <hint>`` and is truthy only when the answer is right. A checker
never raises: a wrong type or shape, or an answer function that crashes, is a
wrong answer with a hint saying so.

Each notebook's checkers live in their own module (``exercises.basics`` for 01,
``exercises.gan`` for 02, …); a checker is one decorated function::

    @checker
    def check_something(answer, ...):
        \"\"\"What the exercise asks (one line).\"\"\"
        t = as_tensor(answer, "answer", shape=(3, 4))   # raises Wrong with a hint
        if not ...:
            raise Wrong("the specific mistake, and how to fix it")
        return "what was right"                       # a str: the answer is right

``COURSE_STRICT_CHECKS=1`` makes a wrong answer raise ``AssertionError`` as well
(for automatic runs of the reference solutions); learners never need it.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

CHECKERS: dict[str, Callable[..., CheckResult]] = {}


class Wrong(Exception):
    """Raised inside a checker: the answer is wrong, and the message is the hint."""


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker: truthy when right; shows itself as one line."""

    passed: bool
    exercise: str
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.passed:
            return f"✅ right ({self.exercise}): {self.message}"
        return f"❌ wrong ({self.exercise}): {self.message}"

    __repr__ = __str__  # what a notebook shows (plain text: hints hold code that markdown would mangle)


def strict() -> bool:
    """True when ``COURSE_STRICT_CHECKS`` is 1/true/yes: wrong answers then raise ``AssertionError``."""
    return os.environ.get("COURSE_STRICT_CHECKS", "").strip().lower() in {"1", "true", "yes"}


def checker(fn: Callable[..., str]) -> Callable[..., CheckResult]:
    """Turn a function that returns a message (right) or raises :class:`Wrong` (wrong) into a checker."""
    name = fn.__name__.removeprefix("check_").replace("_", " ")

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> CheckResult:
        try:
            result = CheckResult(True, name, fn(*args, **kwargs))
        except Wrong as wrong:
            result = CheckResult(False, name, str(wrong))
        except Exception as exc:  # a checker must never show a learner a traceback
            result = CheckResult(False, name, f"checking your answer raised {type(exc).__name__}: {exc}")
        if strict() and not result:
            raise AssertionError(str(result))
        return result

    CHECKERS[fn.__name__] = wrapped
    return wrapped


# --- helpers for writing checkers -----------------------------------------------------


NOT_DONE = "not done yet: replace the `...` (or the `raise NotImplementedError`) in the exercise cell with your answer"


def not_done(value: Any) -> None:
    """:class:`Wrong` with the plain "not done yet" hint if ``value`` is still the stub's ``...``."""
    if value is Ellipsis:
        raise Wrong(NOT_DONE)


def as_tensor(value: Any, what: str, shape: tuple[int, ...] | None = None, floating: bool = True) -> torch.Tensor:
    """``value`` as a detached CPU tensor, or :class:`Wrong` with a hint about its type, shape or values."""
    not_done(value)
    if not isinstance(value, torch.Tensor):
        raise Wrong(f"{what} should be a torch.Tensor, but it is a {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise Wrong(f"{what} should have shape {tuple(shape)}, but it has shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise Wrong(f"{what} has dtype {value.dtype}; use floats (e.g. call .float() on it)")
    value = value.detach().cpu()
    if floating and not torch.isfinite(value).all():
        raise Wrong(f"{what} contains inf or nan values")
    return value


def as_number(value: Any, what: str) -> float:
    """``value`` (a Python number or a one-element tensor) as a float, or :class:`Wrong`."""
    not_done(value)
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise Wrong(f"{what} should be one number, but it is a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Wrong(f"{what} should be a number, but it is a {type(value).__name__}")
    if not math.isfinite(value):
        raise Wrong(f"{what} is {value}; it should be finite")
    return float(value)


def call(fn: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function; a stub or a crash becomes :class:`Wrong` with a plain hint.

    A function that still raises ``NotImplementedError`` (the exercise's stub)
    or returns ``...`` gets the "not done yet" hint, never a traceback.
    """
    not_done(fn)
    if not callable(fn):
        raise Wrong(f"{what} should be a function, but it is a {type(fn).__name__}")
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError:
        raise Wrong(NOT_DONE) from None
    except Exception as exc:
        raise Wrong(f"{what} raised {type(exc).__name__}: {exc}") from None
    not_done(result)
    return result


def close(a: torch.Tensor | float, b: torch.Tensor | float, tol: float = 1e-4) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=tol, atol=tol))
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
