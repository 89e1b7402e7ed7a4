"""Reference solution of notebook 00's exercise (how exercises work)."""

import collections


def char_frequencies(text):
    """Each character of ``text`` and its share of the text."""
    counts = collections.Counter(text)
    return {char: n / len(text) for char, n in counts.items()}
