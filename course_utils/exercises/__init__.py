"""Exercises: checkers that answer right, wrong (with a specific hint) or not done yet; solutions on request.

An exercise is two cells, right after the idea it practises: a stub the
learner completes (a function whose body is ``raise NotImplementedError``),
then a call to its checker. Run All leaves every exercise "not done yet"; no
cell of a notebook ever holds or runs a solution.

The reference solutions live in :mod:`course_utils.solutions` (one file per
notebook, plain Python). A learner who wants one asks for it:
``show_solution("my_step")`` prints its source without running it, the same in
JupyterLab, Colab and Kaggle; a static viewer links to the file. Notebook 00
explains this once.

Every checker returns a :class:`CheckResult`, which shows as one line:
``✅ right (exercise): ...``, ``❌ wrong (exercise): <hint>`` or
``⬜ not done yet (exercise)``, and is truthy only when the answer is right. A
checker never raises: a wrong type or shape, or an answer function that
crashes, is a wrong answer with a hint saying so.

Each notebook's checkers live in their own module (``exercises.basics`` for 01,
``exercises.gan`` for 02, ...); a checker is one decorated function that names
its reference solution in ``course_utils.solutions.<the same module name>``::

    @checker(solution="my_function")
    def check_something(fn):
        \"\"\"What the exercise asks (one line).\"\"\"
        t = as_tensor(call(fn, "your function", x), "the result", shape=(3, 4))  # Wrong/NotDone with a hint
        if not ...:
            raise Wrong("the specific mistake, and how to fix it")
        return "what was right"                       # a str: the answer is right

The unit tests run every checker on its reference solution (right) and on a
stub (not done yet). ``COURSE_EXPECT_STUBS=1``, set when the tests run the
notebooks, makes a checker raise ``AssertionError`` unless it sees an unfinished
stub: a notebook whose cells answer an exercise fails the tests.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKERS: dict[str, Callable[..., CheckResult]] = {}
SOLUTIONS: dict[str, str] = {}  # checker name -> the name of its reference function in course_utils.solutions.*
RIGHT, WRONG, NOT_DONE = "right", "wrong", "not done"


class Wrong(Exception):
    """Raised inside a checker: the answer is wrong, and the message is the hint."""


class NotDone(Exception):
    """Raised inside a checker: the learner has not answered yet (the stub is unchanged)."""


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker: truthy when right; shows itself as one line."""

    status: str  # RIGHT, WRONG or NOT_DONE
    exercise: str
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == RIGHT

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.status == RIGHT:
            return f"✅ right ({self.exercise}): {self.message}"
        if self.status == NOT_DONE:
            return f"⬜ not done yet ({self.exercise})"
        return f"❌ wrong ({self.exercise}): {self.message}"

    __repr__ = __str__  # what a notebook shows (plain text: hints hold code that markdown would mangle)


def expect_stubs() -> bool:
    """True when ``COURSE_EXPECT_STUBS`` is 1/true/yes: the tests' runs of the notebooks."""
    return os.environ.get("COURSE_EXPECT_STUBS", "").strip().lower() in {"1", "true", "yes"}


def checker(fn: Callable[..., str] | None = None, *, solution: str | None = None) -> Any:
    """Turn a function that returns a message (right) or raises :class:`Wrong` / :class:`NotDone` into a checker.

    ``solution`` names the reference function in ``course_utils.solutions.<module>``,
    where ``<module>`` is the checker's own module name (``gan`` for ``exercises.gan``).
    """
    if fn is None:
        return functools.partial(checker, solution=solution)
    name = fn.__name__.removeprefix("check_").replace("_", " ")

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> CheckResult:
        try:
            result = CheckResult(RIGHT, name, fn(*args, **kwargs))
        except NotDone:
            result = CheckResult(NOT_DONE, name)
        except Wrong as wrong:
            result = CheckResult(WRONG, name, str(wrong))
        except Exception as exc:  # a checker must never show a learner a traceback
            result = CheckResult(WRONG, name, f"checking your answer raised {type(exc).__name__}: {exc}")
        if expect_stubs() and result.status != NOT_DONE:
            raise AssertionError(f"{result}: under test every exercise must be left as its stub, so a cell of "
                                 "this notebook answers it (a solution must never run in Run All)")
        return result

    CHECKERS[fn.__name__] = wrapped
    if solution is not None:
        SOLUTIONS[fn.__name__] = solution
    return wrapped


class Refused(RuntimeError):
    """Raised, during a check, by a function the exercise asks the learner to write without."""


@contextlib.contextmanager
def refusing(targets: Iterable[tuple[Any, str, str]], used: list[str] | None = None) -> Iterator[list[str]]:
    """While inside, each ``owner.attr`` of ``targets`` (``(owner, attr, label)``) notes ``label`` in the list it
    yields (``used``, if given) and raises :class:`Refused`; every one is restored on the way out, whatever happens.

    A checker runs the learner's function inside, to tell "wrote it" from "called the package's version".
    """
    used = [] if used is None else used
    saved: list[tuple[Any, str, Any]] = []

    def refuse(label: str) -> Callable[..., Any]:
        def raise_(*args: Any, **kwargs: Any) -> Any:
            used.append(label)
            raise Refused(f"{label} is not allowed in this exercise")
        return raise_

    try:
        for owner, attr, label in targets:
            saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, refuse(label))
        yield used
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def call_refusing(
    shortcuts: Iterable[tuple[Any, str, str]], task: str, fn: Any, what: str, *args: Any,
    advice: str = "build it from torch operations", **kwargs: Any,
) -> Any:
    """:func:`call`, with the package functions ``shortcuts`` (``(owner, attr, label)``) refused.

    Passing one as the answer, or calling one (even inside a ``try`` that then answers some other
    way), is :class:`Wrong`, with a hint that begins with ``task`` ("write the loop yourself"),
    names the function and ends with ``advice``. Every checker that asks for an algorithm the
    package already has uses it.
    """
    shortcuts = list(shortcuts)
    for owner, attr, label in shortcuts:  # the package's function itself, passed as the answer
        if fn is getattr(owner, attr):
            raise Wrong(f"{task}: {what} is {label} itself, which does the exercise for you; {advice}")
    with refusing(shortcuts) as used:
        try:
            result = call(fn, what, *args, **kwargs)
        except Wrong:
            if not used:
                raise
    if used:
        raise Wrong(f"{task}: {what} calls {used[0]}, which does the exercise for you; {advice}")
    return result


# --- the reference solutions, on request ------------------------------------------------------------


def _solutions_module(check_name: str) -> str:
    topic = CHECKERS[check_name].__module__.rsplit(".", 1)[-1]
    return f"course_utils.solutions.{topic}"


def reference(check: str | Callable[..., Any]) -> Callable[..., Any]:
    """The reference solution of a checker (given as the checker or its name)."""
    name = check if isinstance(check, str) else check.__name__
    if name not in SOLUTIONS:
        raise KeyError(f"{name} has no registered reference solution")
    return getattr(importlib.import_module(_solutions_module(name)), SOLUTIONS[name])


def _find(what: str | Callable[..., Any]) -> str:
    """The checker name for a checker, a checker name, or the name of the function an exercise asks for."""
    name = what if isinstance(what, str) else getattr(what, "__name__", "")
    if name in SOLUTIONS:
        return name
    matches = [check for check, solution in SOLUTIONS.items() if solution == name]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(SOLUTIONS.values()))
    raise ValueError(f"no exercise asks for {name!r}; the exercises imported so far ask for: {known}")


def solution_source(what: str | Callable[..., Any]) -> tuple[str, Path]:
    """The source text of a reference solution, after the imports of its file, and the file it is in.

    The imports come first so that the text shown runs as it is when pasted into a cell.
    """
    fn = reference(_find(what))
    module = inspect.getsource(inspect.getmodule(fn))
    imports = [line for line in module.splitlines() if line.startswith(("import ", "from "))]
    source = inspect.getsource(fn)
    return ("\n".join(imports) + "\n\n\n" + source if imports else source), Path(inspect.getsourcefile(fn) or "")


def show_solution(what: str | Callable[..., Any]) -> None:
    """Show the reference solution of an exercise without running it.

    ``what`` is the name of the function the exercise asks you to write (for
    example ``"my_step"``), your function itself, or its checker. The source is
    displayed (highlighted in a notebook, plain text elsewhere); nothing is
    defined or executed.
    """
    source, path = solution_source(what)
    where = f"# from course_utils/solutions/{path.name}: read it, then write your own version in the exercise cell\n"
    try:
        from IPython import get_ipython
        from IPython.display import Code, display
    except ImportError:  # pragma: no cover - IPython is always there in a notebook
        print(where + source)
        return
    if get_ipython() is None:
        print(where + source)
    else:
        display(Code(where + source, language="python"))


# --- helpers for writing checkers -----------------------------------------------------


def not_done(value: Any) -> None:
    """:class:`NotDone` if ``value`` is still the stub's ``...``."""
    if value is Ellipsis:
        raise NotDone


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
    """Call the learner's function; a stub becomes :class:`NotDone`, a crash :class:`Wrong` with a plain hint.

    A function that still raises ``NotImplementedError`` (the exercise's stub)
    or returns ``...`` is "not done yet", never a traceback.
    """
    not_done(fn)
    if not callable(fn):
        raise Wrong(f"{what} should be a function, but it is a {type(fn).__name__}")
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError:
        raise NotDone from None
    except Exception as exc:
        raise Wrong(f"{what} raised {type(exc).__name__}: {exc}") from None
    not_done(result)
    return result


def close(a: torch.Tensor | float, b: torch.Tensor | float, tol: float = 1e-4) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=tol, atol=tol))
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
