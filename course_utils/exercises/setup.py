"""The exercise checkers of notebook 00: character shares, the unigram's loss, then names given to girls and boys."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from course_utils import data, datasets, gpt_training
from course_utils.exercises import Wrong, as_number, call, checker
from course_utils.text import counts_to_probs, pair_counts, stream_pairs

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


# The loss of the unigram on each text, and the usual mistakes: (what the mistake gives, its hint).
UNIGRAM_TEXTS = (*TEXTS, "aaaa", "abcd")  # 0 nats: one character, nothing to guess; ln 4: four equally common


def _shares(text: str) -> list[float]:
    return [n / len(text) for n in Counter(text).values()]


def _unigram_loss(text: str) -> float:
    return -sum(p * math.log(p) for p in _shares(text))


def _unigram_mistakes(text: str) -> list[tuple[float, str]]:
    loss, shares = _unigram_loss(text), _shares(text)
    return [(loss / math.log(2), "that is in bits (log base 2); use the natural log, math.log, for nats"),
            (-loss, "-ln p is positive, so the loss is too: -sum of p ln p, with the minus sign"),
            (loss * len(text), "that is the total over the text; the loss is the mean per character"),
            (-sum(math.log(p) for p in shares), "average -ln p over every character of the text, so weight each "
             "distinct character's -ln p by its share p"),
            (math.log(len(shares)), "that is ln of the number of distinct characters, the loss of a uniform guess; "
             "score each character by its own share")]


def _cached_text() -> str | None:
    """Tiny Shakespeare, if it is cached; else None."""
    try:
        data.fetch("tinyshakespeare", download=False, verbose=False)
    except data.DataUnavailableError:
        return None
    return datasets.load_text("tinyshakespeare")


@functools.lru_cache(maxsize=1)
def _bigram_held_out(corpus: str) -> float:
    """05's bigram baseline on ``corpus`` in nats per character: its split (``gpt_training.char_data``) and its
    add-one table of character pairs (``text.counts_to_probs``), scored on the held-out pairs."""
    split = gpt_training.char_data(corpus)
    counts = pair_counts(*stream_pairs(split.train), len(split.vocab))
    return -counts_to_probs(counts, alpha=1.0)[stream_pairs(split.val)].log().mean().item()


@checker(solution="unigram_loss")
def check_unigram_loss(fn: Callable[[str], Any]) -> str:
    """``fn(text)`` -> the unigram's loss on ``text`` in nats per character: -sum of p ln p over its characters.

    First on small texts (a specific hint for each usual mistake), then on Tiny Shakespeare when it is cached: a
    right answer is placed between 05's bigram and uniform guessing, without its value (the learner prints it).
    """
    for text in UNIGRAM_TEXTS:
        got = as_number(call(fn, "unigram_loss", text), "the loss")
        loss, distinct = _unigram_loss(text), len(set(text))
        if math.isclose(got, loss, rel_tol=1e-9, abs_tol=1e-12):
            continue
        for value, hint in _unigram_mistakes(text):
            if math.isclose(got, value, rel_tol=1e-9):
                raise Wrong(f"for {text!r} you give {got:.4f}: {hint}")
        raise Wrong(f"for {text!r} the loss is {loss:.4f} nats per character (between 0 and ln {distinct} = "
                    f"{math.log(distinct):.4f}); you give {got:.4f}")
    solved = ("the unigram's loss; grouping equal characters turns the mean of -ln p(c) into -sum of p(c) ln p(c), "
              "the entropy of the shares: 0 for 'aaaa', ln 4 for 'abcd'")
    text = _cached_text()
    if text is None:
        return solved + " (Tiny Shakespeare is not cached, so not checked on it)"
    got = as_number(call(fn, "unigram_loss", text), "the loss")
    if not math.isclose(got, _unigram_loss(text), rel_tol=1e-9):
        raise Wrong("right on the small texts, but not on Tiny Shakespeare: is every character counted as it is, "
                    "capitals, spaces, newlines and punctuation included?")
    k = len(set(text))
    bigram, uniform = _bigram_held_out(text), math.log(k)
    where = "between" if bigram < got < uniform else "not between"
    return (f"{solved}. On Tiny Shakespeare yours lies {where} 05's bigram ({bigram:.3f} nats/char on held-out text) "
            f"and uniform guessing (ln {k} = {uniform:.3f}): print it to see where")


# --- exercise 2: names given to girls and to boys (the names section) ----------------------------------------------

# Two small lists as the SSA's files and makemore write names (Emma, emma), with repeats inside a list, so that each
# usual mistake gives its own wrong count: the right answer is 3 (riley, jordan, avery).
GIRLS = ("Emma", "Riley", "Ava", "Jordan", "ava", "avery", "RILEY")
BOYS = ("Liam", "riley", "Jordan", "Noah", "noah", "Avery", "Jordan")
LOWER = (["emma", "olivia", "ava", "liam"], ["liam", "noah", "william"])  # like the course's data: one shared name


def _mistakes(girls: Sequence[str], boys: Sequence[str]) -> list[tuple[int, str]]:
    """(the count a usual mistake gives, its hint) for two lists of names."""
    g, b = {n.lower() for n in girls}, {n.lower() for n in boys}
    both = Counter(n.lower() for n in (*girls, *boys))
    every = [n.lower() for n in (*girls, *boys)]
    again = ("count each name once, not each of its copies, whatever its case: which Python type holds each item "
             "only once?")
    repeats = ("a name repeated inside one list is not a name given to both: count the names in the girls' list "
               "that are also in the boys' list, not every name that repeats")
    return [(len(set(girls) & set(boys)), "'Riley' and 'riley' are one name: compare the names in lower case "
             "(name.lower()) before you compare the lists"),
            (sum(n.lower() in b for n in girls) + sum(n.lower() in g for n in boys), again),
            (sum(n.lower() in b for n in girls), again),
            (sum(n.lower() in g for n in boys), again),
            (sum(k > 1 for k in both.values()), repeats),
            (len(every) - len(set(every)), repeats)]


@checker(solution="unisex_count")
def check_unisex_count(fn: Callable[[list[str], list[str]], Any]) -> str:
    """``fn(girls, boys)`` -> how many distinct names, whatever their case, are in both lists."""
    for girls, boys in ((list(GIRLS), list(BOYS)), LOWER):
        got = call(fn, "unisex_count", list(girls), list(boys))
        if isinstance(got, (set, frozenset, list, tuple, dict)):
            raise Wrong(f"return how many names are in both lists (a number), not the {type(got).__name__} of them")
        count = as_number(got, "the count")
        shared = sorted({n.lower() for n in girls} & {n.lower() for n in boys})
        if count == len(shared):
            continue
        for value, hint in _mistakes(girls, boys):
            if count == value:
                raise Wrong(f"for girls={girls} and boys={boys} you count {count:g}: {hint}")
        raise Wrong(f"for girls={girls} and boys={boys} the names in both are {shared}; you count {count:g}")
    return "the distinct names in both lists, whatever their case; riley, jordan and avery in the example"


# --- exercise 2, part 2: the 100 most common boys' names of 2018 that were also given to girls --------------------

# A small names file of the course's shape, girls' names then boys' (most common first), built so that each usual
# slicing mistake gives its own count: 2 of the first 100 boys' names (b50, b99) are girls' names too.
SHARED = (50, 99, 100, 110, 120)  # the boys' places of the names also in the girls' list
SMALL_BOYS = [f"b{i}" for i in range(130)]
SMALL_FILE = [f"g{i}" for i in range(120)] + [SMALL_BOYS[i] for i in SHARED] + SMALL_BOYS
SMALL_START = 120 + len(SHARED)


def _top_boys(names: Sequence[str], start: int, first: int = 0, last: int = 100) -> int:
    """How many of the boys' names at places first..last-1 are in the girls' list names[:start]."""
    return len({n.lower() for n in names[:start]} & {n.lower() for n in names[start + first:start + last]})


def _top_boys_mistakes(names: Sequence[str], start: int) -> list[tuple[int, str]]:
    exactly = "count exactly 100 boys' names, the most common one (at index start) included"
    return [(_top_boys(names, start, 0, len(names) - start), "that counts the whole boys' list; keep only its "
             "100 most common names, which come first"),
            (_top_boys(names, start, 1, 101), exactly), (_top_boys(names, start, 0, 101), exactly),
            (_top_boys(names, start, 0, 99), exactly),
            (len({n.lower() for n in names[start:start + 100]}), "every boys' name is in a girls' list that runs "
             "past index start: the girls' list ends where the boys' list begins")]


def _cached_names() -> tuple[list[str], int] | None:
    """The makemore names and the index where the boys' list starts, if the file is cached; else None."""
    try:
        data.fetch("names", download=False, verbose=False)
    except data.DataUnavailableError:
        return None
    names = datasets.load_names()
    seen: set[str] = set()
    start = next(i for i, name in enumerate(names) if name in seen or seen.add(name))  # the first repeat
    return names, start


@checker(solution="top_boys_unisex")
def check_top_boys_unisex(fn: Callable[[list[str], int], Any]) -> str:
    """``fn(names, start)`` -> how many of the 100 most common boys' names were also given to girls.

    First on a small file of the same shape (a specific hint for each slicing mistake), then on the makemore names
    when they are cached. The real count is never shown: a wrong one gets a hint, a right one a plain yes.
    """
    got = as_number(call(fn, "top_boys_unisex", list(SMALL_FILE), SMALL_START), "the count")
    right = _top_boys(SMALL_FILE, SMALL_START)
    if got != right:
        for value, hint in _top_boys_mistakes(SMALL_FILE, SMALL_START):
            if got == value:
                raise Wrong(f"on a small file (girls' names g0, g1, ..., then boys' b0, b1, ...) you count {got:g}: "
                            f"{hint}")
        raise Wrong(f"on a small file whose boys' names b50 and b99 are also girls' names, you count {got:g}, not "
                    f"{right}; take the girls' list and the first 100 of the boys' list, then count the names in both")
    real = _cached_names()
    if real is None:
        return "right on a small file (the names file is not cached, so not checked on it)"
    names, start = real
    got = as_number(call(fn, "top_boys_unisex", list(names), start), "the count")
    if got != _top_boys(names, start):
        for value, hint in _top_boys_mistakes(names, start):
            if got == value:
                raise Wrong(f"on the makemore names your count is not right: {hint}")
        raise Wrong("right on the small file, but not on the makemore names: is every name compared in lower case, "
                    "each counted once?")
    return "right, on a small file and on the makemore names (print your count to see it)"
