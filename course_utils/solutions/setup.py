"""Reference solution of notebook 00's exercise (how exercises work)."""

from collections import Counter


def char_frequencies(text):
    """Each character of ``text`` and its share of the text."""
    counts = Counter(text)
    return {char: n / len(text) for char, n in counts.items()}
