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
