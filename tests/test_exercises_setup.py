"""course_utils.exercises.setup: notebook 00's exercises (character shares, the unigram's loss, unisex names)."""

from __future__ import annotations

import math
from collections import Counter

from course_utils import gpt_training, text
from course_utils.exercises import setup as ex
from course_utils.solutions.setup import char_frequencies, top_boys_unisex, unigram_loss, unisex_count
from tests.checks import assert_not_done, assert_right, assert_wrong
from tests.data_support import require_cached


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


def test_unigram_loss_right_on_the_reference_and_between_its_bounds():
    assert_right(ex.check_unigram_loss(unigram_loss))
    assert "the entropy of the shares" in str(ex.check_unigram_loss(unigram_loss))  # shown only once solved
    assert unigram_loss("aaaa") == 0 and math.isclose(unigram_loss("abcd"), math.log(4))
    assert 0 < unigram_loss("abracadabra") < math.log(5)  # five distinct characters, not equally common
    shares = char_frequencies("abracadabra")  # the same model: the mean of -ln p over the text's characters
    assert math.isclose(unigram_loss("abracadabra"), -sum(math.log(shares[c]) for c in "abracadabra") / 11)


def test_unigram_loss_each_mistake_gets_its_hint():
    def entropy(text, log=math.log, sign=-1, per=1):
        counts = Counter(text)
        return sign * sum(n / len(text) * log(n / len(text)) for n in counts.values()) * (len(text) if per else 1)

    assert_wrong(ex.check_unigram_loss(lambda t: entropy(t, log=math.log2, per=0)), "in bits")
    assert_wrong(ex.check_unigram_loss(lambda t: entropy(t, sign=1, per=0)), "with the minus sign")
    assert_wrong(ex.check_unigram_loss(lambda t: entropy(t)), "the total over the text")
    unweighted = lambda t: -sum(math.log(n / len(t)) for n in Counter(t).values())
    assert_wrong(ex.check_unigram_loss(unweighted), "weight each distinct character's -ln p by its share")
    assert_wrong(ex.check_unigram_loss(lambda t: math.log(len(set(t)))), "the loss of a uniform guess")
    assert_wrong(ex.check_unigram_loss(lambda t: 1.0), "the loss is 1.4143 nats per character")
    assert_wrong(ex.check_unigram_loss(lambda t: {"a": 1.0}), "should be a number")


def test_unigram_loss_unfinished_stub_is_not_done_yet():
    def unigram_loss(text):
        raise NotImplementedError

    assert_not_done(ex.check_unigram_loss(unigram_loss))


def test_unigram_loss_bigram_baseline_on_a_small_text():
    # "abab...ab" (20): fit on the first 18 (a->b 9 times, a first 9 times), score the held-out pair (a, b)
    assert math.isclose(ex._bigram_held_out("ab" * 10), -math.log((9 + 1) / (9 + 2)), rel_tol=1e-6)  # float32 table


def test_unigram_loss_checks_tiny_shakespeare_without_showing_the_loss():
    require_cached("tinyshakespeare")
    shakespeare = ex._cached_text()
    loss, bigram, uniform = unigram_loss(shakespeare), ex._bigram_held_out(shakespeare), math.log(65)
    data = gpt_training.char_data(shakespeare)  # 05's split and add-one bigram give the same baseline
    table = text.counts_to_probs(text.pair_counts(*text.stream_pairs(data.train), 65), alpha=1.0)
    assert math.isclose(bigram, -table[text.stream_pairs(data.val)].log().mean().item(), rel_tol=1e-4)
    assert bigram + 0.5 < loss < uniform - 0.5  # the unigram lies well between the two
    result = ex.check_unigram_loss(unigram_loss)
    assert_right(result)
    assert f"between 05's bigram ({bigram:.3f} nats/char" in result.message and "ln 65 = 4.174" in result.message
    assert f"{loss:.2f}" not in result.message and f"{loss:.1f}" not in result.message  # the learner prints it
    lower = ex.check_unigram_loss(lambda t: unigram_loss(t.lower()))  # right on the small texts, all lower case
    assert_wrong(lower, "not on Tiny Shakespeare", "capitals")


def test_unigram_loss_without_tiny_shakespeare_checks_the_small_texts_only(monkeypatch):
    monkeypatch.setattr(ex, "_cached_text", lambda: None)
    result = ex.check_unigram_loss(unigram_loss)
    assert_right(result)
    assert "not cached" in result.message and "bigram" not in result.message


def test_unisex_count_right_on_the_reference_and_the_example():
    assert_right(ex.check_unisex_count(unisex_count))
    assert unisex_count(list(ex.GIRLS), list(ex.BOYS)) == 3 and unisex_count(*ex.LOWER) == 1
    assert_right(ex.check_unisex_count(lambda g, b: float(len({n.casefold() for n in g} & {n.casefold() for n in b}))))


def test_unisex_count_each_mistake_gets_its_hint():
    lower = lambda names: {n.lower() for n in names}
    assert_wrong(ex.check_unisex_count(lambda g, b: len(set(g) & set(b))), "compare the names in lower case")
    one_sided = lambda g, b: sum(n.lower() in lower(b) for n in g)  # every copy in the girls' list
    assert_wrong(ex.check_unisex_count(one_sided), "count each name once, not each of its copies")
    two_sided = lambda g, b: one_sided(g, b) + one_sided(b, g)
    assert_wrong(ex.check_unisex_count(two_sided), "count each name once, not each of its copies")
    repeated = lambda g, b: sum(k > 1 for k in Counter(n.lower() for n in g + b).values())
    assert_wrong(ex.check_unisex_count(repeated), "a name repeated inside one list is not a name given to both")
    every = lambda g, b: len(g + b) - len(lower(g + b))  # every repeat, within a list too
    assert_wrong(ex.check_unisex_count(every), "a name repeated inside one list is not a name given to both")
    assert_wrong(ex.check_unisex_count(lambda g, b: lower(g) & lower(b)), "not the set of them")
    assert_wrong(ex.check_unisex_count(lambda g, b: 0), "the names in both are ['avery', 'jordan', 'riley']")
    assert_wrong(ex.check_unisex_count(lambda g, b: "3"), "should be a number")
    assert_wrong(ex.check_unisex_count(lambda g, b: g.lower()), "raised AttributeError")


def test_unisex_count_unfinished_stub_is_not_done_yet():
    def unisex_count(girls, boys):
        raise NotImplementedError

    assert_not_done(ex.check_unisex_count(unisex_count))


def test_unisex_count_hint_does_not_hand_over_the_solution():
    one_sided = lambda g, b: sum(n.lower() in {m.lower() for m in b} for n in g)
    result = ex.check_unisex_count(one_sided)
    assert_wrong(result, "which Python type holds each item only once?")
    assert "set" not in result.message and "intersect" not in result.message


def _slice(first, last, girls_end=0):
    """A top_boys_unisex with a slicing mistake: boys' places first..last-1, the girls' list girls_end past start."""
    return lambda names, start: len({n.lower() for n in names[:start + girls_end]}
                                    & {n.lower() for n in names[start + first:start + last]})


def test_top_boys_unisex_right_on_the_reference_and_the_small_file():
    assert_right(ex.check_top_boys_unisex(top_boys_unisex))
    assert top_boys_unisex(ex.SMALL_FILE, ex.SMALL_START) == 2  # b50 and b99
    assert top_boys_unisex(["Ava", "liam", "ava", "noah"], 2) == 1  # any case, counted once
    assert_right(ex.check_top_boys_unisex(_slice(0, 100)))


def test_top_boys_unisex_each_mistake_gets_its_hint():
    assert_wrong(ex.check_top_boys_unisex(_slice(0, 10**6)), "that counts the whole boys' list")
    for first, last in ((1, 101), (0, 101), (0, 99)):
        assert_wrong(ex.check_top_boys_unisex(_slice(first, last)), "count exactly 100 boys' names")
    assert_wrong(ex.check_top_boys_unisex(_slice(0, 100, girls_end=100)), "the girls' list ends where")
    assert_wrong(ex.check_top_boys_unisex(lambda names, start: 7), "you count 7, not 2")
    assert_wrong(ex.check_top_boys_unisex(lambda names, start: "2"), "should be a number")


def test_top_boys_unisex_checks_the_real_names_without_showing_the_count():
    require_cached("names")
    names, start = ex._cached_names()
    assert names[start:start + 3] == ["liam", "noah", "william"]
    count = top_boys_unisex(names, start)
    result = ex.check_top_boys_unisex(top_boys_unisex)
    assert_right(result)
    assert "makemore names" in result.message and str(count) not in result.message

    def off_on_real(names, start):  # right on the small file only
        return top_boys_unisex(names, start) - 50 * (len(names) > 1_000)

    result = ex.check_top_boys_unisex(off_on_real)
    assert_wrong(result, "not on the makemore names")
    assert str(count) not in result.message and str(count - 50) not in result.message


def test_top_boys_unisex_unfinished_stub_is_not_done_yet():
    def top_boys_unisex(names, start):
        raise NotImplementedError

    assert_not_done(ex.check_top_boys_unisex(top_boys_unisex))
