"""Reference solutions of notebook 00's exercises."""

import collections


def char_frequencies(text):
    """Each character of ``text`` and its share of the text."""
    counts = collections.Counter(text)
    return {char: n / len(text) for char, n in counts.items()}


def unisex_count(girls, boys):
    """How many distinct names, whatever their case, are in both lists."""
    return len({name.lower() for name in girls} & {name.lower() for name in boys})
