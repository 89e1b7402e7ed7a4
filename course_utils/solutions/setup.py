"""Reference solutions of notebook 00's exercises."""

import collections
import math


def char_frequencies(text):
    """Each character of ``text`` and its share of the text."""
    counts = collections.Counter(text)
    return {char: n / len(text) for char, n in counts.items()}


def unigram_loss(text):
    """The unigram's loss on text, in nats per character: -sum of p ln p over its characters' shares p."""
    shares = [n / len(text) for n in collections.Counter(text).values()]
    return -sum(p * math.log(p) for p in shares)


def unisex_count(girls, boys):
    """How many distinct names, whatever their case, are in both lists."""
    return len({name.lower() for name in girls} & {name.lower() for name in boys})


def top_boys_unisex(names, start):
    """How many of the 100 most common boys' names (names[start:], most common first) are in the girls' list."""
    girls = {name.lower() for name in names[:start]}
    return len(girls & {name.lower() for name in names[start:start + 100]})
