"""The exercise checker of notebook 00 (how exercises work, on one tiny example)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from course_utils.exercises import Wrong, call, checker

TEXTS = ("abracadabra", "to be, or not to be:\nthat is the question")


@checker(solution="char_frequencies")
def check_char_frequencies(fn: Callable[[str], Any]) -> str:
    """``fn(text)`` -> a dict from each character of ``text`` to its share of the text (the shares sum to 1)."""
    for text in TEXTS:
        got = call(fn, "char_frequencies", text)
        if not isinstance(got, dict):
            raise Wrong(f"return a dict from each character to its share, not a {type(got).__name__}")
        counts = Counter(text)
        missing = sorted(set(counts) - set(got))
        if missing:
            raise Wrong(f"every character of the text needs an entry; for {text!r} you have none for {missing} "
                        "(spaces and newlines are characters too)")
        extra = sorted(set(got) - set(counts))
        if extra:
            raise Wrong(f"{extra} do not occur in {text!r}: give shares only to the characters that appear")
        values = {c: float(got[c]) for c in counts}
        if all(math.isclose(values[c], n) for c, n in counts.items()):
            raise Wrong("these are counts; divide each by len(text) so that the shares sum to 1")
        wrong = [c for c, n in counts.items() if not math.isclose(values[c], n / len(text), rel_tol=1e-9)]
        if wrong:
            c = wrong[0]
            raise Wrong(f"in {text!r}, {c!r} appears {counts[c]} times in {len(text)} characters, so its share "
                        f"is {counts[c] / len(text):.4f}; you give {values[c]:.4f}")
    return "each character's share of the text; 'a' is 5/11 of 'abracadabra'"
