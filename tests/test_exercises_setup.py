"""course_utils.exercises.setup: notebook 00's one exercise, the example of how every exercise works."""

from __future__ import annotations

from collections import Counter

from course_utils.exercises import setup as ex
from course_utils.solutions.setup import char_frequencies
from tests.checks import assert_not_done, assert_right, assert_wrong


def test_right_on_the_reference():
    assert_right(ex.check_char_frequencies(char_frequencies))
    shares = char_frequencies("abracadabra")
    assert abs(sum(shares.values()) - 1) < 1e-12 and shares["a"] == 5 / 11


def test_each_mistake_gets_its_hint():
    assert_wrong(ex.check_char_frequencies(lambda t: dict(Counter(t))), "these are counts")
    assert_wrong(ex.check_char_frequencies(lambda t: [1.0]), "return a dict")
    no_space = lambda t: {c: n / len(t) for c, n in Counter(t).items() if not c.isspace()}
    assert_wrong(ex.check_char_frequencies(no_space), "spaces and newlines are characters too")
    letters = lambda t: {c: t.count(c) / len(t) for c in "abcdefghijklmnopqrstuvwxyz"}
    assert_wrong(ex.check_char_frequencies(letters), "give shares only to the characters that appear")
    distinct = lambda t: {c: n / len(set(t)) for c, n in Counter(t).items()}
    assert_wrong(ex.check_char_frequencies(distinct), "so its share is 0.4545")
    assert_wrong(ex.check_char_frequencies(lambda t: 1 / 0), "raised ZeroDivisionError")


def test_an_unfinished_stub_is_not_done_yet():
    def char_frequencies(text):
        raise NotImplementedError

    assert_not_done(ex.check_char_frequencies(char_frequencies))
