"""What every ``python -m course_utils.…`` command shares: bad input refused in one line, with status 2 (shared).

A learner or an instructor types these commands (``data fetch``, ``train gpt``,
``bundle install``...). A value the command cannot use stops it before
anything is written, with one line naming the value and what is allowed, and
exit status 2, never a usage block or a traceback: :class:`OneLineParser` for
what ``argparse`` checks, :func:`errors_exit` for the errors a command raises
itself (a missing data file, a corrupt checkpoint). No topic module is imported
here.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn


class OneLineParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose errors are one line, ``error: ...``, with exit status 2 (sub-commands too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} ({self.prog} --help lists the options)\n")


def errors_exit(*errors: type[Exception], code: int = 1) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a command: one of ``errors`` prints ``error: <message>``, returns ``code`` (no traceback)."""
    def decorate(command: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> int:
            try:
                return command(*args, **kwargs)
            except errors as exc:
                print(f"error: {exc}", file=sys.stderr)
                return code
        return run
    return decorate


def repeat_command(what: str, recipe: Any, epochs_done: float, seed: int) -> str:
    """The ``python -m course_utils.train`` line a checkpoint card records to repeat its run.

    ``recipe`` is the name the run was given (``ship`` is the default and is left out); a recipe
    given as an object has no name, and the line then repeats only the epochs and the seed.
    """
    name = f" --recipe {recipe}" if isinstance(recipe, str) and recipe != "ship" else ""
    epochs = f" --epochs {epochs_done:g}" if float(epochs_done).is_integer() else ""
    return f"python -m course_utils.train {what}{name}{epochs} --seed {seed}"
