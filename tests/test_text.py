"""course_utils.text: vocabularies, bigram counts, sampling from logits, and measuring generated text."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import text

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)

# --- the vocabulary -----------------------------------------------------------------------------


def test_vocab_with_a_boundary_token():
    vocab = text.build_vocab(["emma", "bob"], boundary=".")
    assert vocab.itos == (".", "a", "b", "e", "m", "o") and vocab.boundary == "."
    assert vocab.encode_word("bob") == [0, 2, 5, 2, 0]
    assert vocab.encode("bob") == [2, 5, 2]
    assert vocab.decode([2, 5, 2]) == "bob"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode_word("zed")
    with pytest.raises(ValueError, match="boundary"):
        text.build_vocab(["a.b"], boundary=".")


def test_vocab_without_a_boundary_keeps_every_character():
    vocab = text.build_vocab("First Citizen.\nBefore we proceed.")
    assert vocab.boundary is None and "." in vocab.itos and "\n" in vocab.itos
    assert vocab.itos == tuple(sorted(set("First Citizen.\nBefore we proceed.")))
    line = "Before we."
    assert vocab.decode(vocab.encode(line)) == line
    with pytest.raises(ValueError, match="no boundary token"):
        vocab.encode_word("we")
    with pytest.raises(ValueError, match="first symbol"):
        text.Vocab(("a", "."), boundary=".")
    with pytest.raises(ValueError, match="distinct"):
        text.Vocab(("a", "a"))


def test_build_vocab_accepts_a_string_or_strings_alike():
    assert text.build_vocab("abc ab") == text.build_vocab(["abc", " ab"])


# --- bigrams ------------------------------------------------------------------------------------


def test_bigram_pairs_and_counts():
    vocab = text.build_vocab(["ab", "b"], boundary=".")  # . a b
    xs, ys = text.bigram_pairs(["ab", "b"], vocab)
    assert xs.tolist() == [0, 1, 2, 0, 2] and ys.tolist() == [1, 2, 0, 2, 0]
    counts = text.bigram_counts(["ab", "b"], vocab)
    assert counts.tolist() == [[0, 1, 1], [0, 0, 1], [2, 0, 0]]


def test_pair_counts_of_a_running_text():
    vocab = text.build_vocab("abab")
    ids = torch.tensor(vocab.encode("abab"))
    counts = text.pair_counts(*text.stream_pairs(ids), len(vocab))
    assert counts.tolist() == [[0, 2], [1, 0]]  # ab, ba, ab
    with pytest.raises(ValueError, match="0..1"):
        text.pair_counts(torch.tensor([0, 2]), torch.tensor([1, 1]), 2)
    with pytest.raises(ValueError, match="at least two"):
        text.stream_pairs(torch.tensor([1]))


def test_nll_per_char_by_hand():
    words = ["ab", "b"]
    vocab = text.build_vocab(words, boundary=".")
    counts = text.bigram_counts(words, vocab)
    # no smoothing: p(.->a) = p(.->b) = 1/2, p(a->b) = 1, p(b->.) = 1; five predictions
    assert text.nll_per_char(text.counts_to_probs(counts, 0.0), words, vocab) == pytest.approx(2 * math.log(2) / 5)
    # add-one: rows [1,2,2]/5, [1,1,2]/4, [3,1,1]/5
    expected = -(2 * math.log(0.4) + math.log(0.5) + 2 * math.log(0.6)) / 5
    probs = text.counts_to_probs(counts, 1.0)
    assert text.nll_per_char(probs, words, vocab) == pytest.approx(expected, rel=1e-6)
    assert probs[0].tolist() == pytest.approx([0.2, 0.4, 0.4])
    # a pair never seen has probability 0 without smoothing: infinite NLL
    assert text.nll_per_char(text.counts_to_probs(counts, 0.0), ["a"], vocab) == math.inf
    uniform = torch.full((3, 3), 1 / 3)
    assert text.nll_per_char(uniform, words, vocab) == pytest.approx(math.log(3))
    with pytest.raises(ValueError, match="non-negative"):
        text.counts_to_probs(counts, -1.0)



def test_ngram_nll_is_the_bigram_for_n_2_and_counts_longer_contexts():
    words, val = ["ab", "b", "abba"], ["ba", "a"]
    vocab = text.build_vocab(words, boundary=".")
    probs = text.counts_to_probs(text.bigram_counts(words, vocab), 0.5)
    assert text.ngram_nll(words, val, vocab, 2, 0.5) == pytest.approx(text.nll_per_char(probs, val, vocab), rel=1e-6)
    # n = 1: no context, one row of counts; train "ab." counts a, b and . once each, so each has (1 + 1) / (3 + 3)
    assert text.ngram_nll(["ab"], ["b"], vocab, 1, 1.0) == pytest.approx(-(math.log(2 / 6) + math.log(2 / 6)) / 2)
    # n = 3 by hand: train "..ab." -> (..)a, (.a)b, (ab).; val "..b." -> (..)b, (.b). with alpha = 1, V = 3
    assert text.ngram_nll(["ab"], ["b"], vocab, 3, 1.0) == pytest.approx(-(math.log(1 / 4) + math.log(1 / 3)) / 2)
    with pytest.raises(ValueError, match="boundary"):
        text.ngram_nll(["ab"], ["b"], text.build_vocab("ab"), 2)

def test_temperature_known_answers():
    p = torch.tensor([[0.1, 0.2, 0.7]])
    assert torch.allclose(text.apply_temperature(p, 1.0), p)
    # T = 1/2 squares the probabilities: [0.01, 0.04, 0.49] / 0.54
    assert torch.allclose(text.apply_temperature(p, 0.5), torch.tensor([[0.01, 0.04, 0.49]]) / 0.54)
    # T = 2 takes square roots
    roots = p.sqrt()
    assert torch.allclose(text.apply_temperature(p, 2.0), roots / roots.sum())
    with pytest.raises(ValueError, match="positive"):
        text.apply_temperature(p, 0.0)


def test_sample_names():
    vocab = text.Vocab((".", "a", "b"), boundary=".")
    always_ab = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert text.sample_names(always_ab, vocab, 3) == ["ab", "ab", "ab"]
    never_ends = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert text.sample_names(never_ends, vocab, 1, max_len=7) == ["aaaaaaa"]
    probs = torch.full((3, 3), 1 / 3)
    a = text.sample_names(probs, vocab, 20, generator=torch.Generator().manual_seed(3))
    b = text.sample_names(probs, vocab, 20, generator=torch.Generator().manual_seed(3))
    assert a == b and len(set(a)) > 3
    # top_k=1 from '.' picks the likeliest first letter only
    skewed = torch.tensor([[0.0, 0.9, 0.1], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert set(text.sample_names(skewed, vocab, 30, top_k=1, generator=torch.Generator().manual_seed(0))) == {"a"}


def test_neural_bigram_starts_uniform_and_is_a_one_hot_layer():
    net = text.NeuralBigram(5)
    x = torch.tensor([0, 3, 4])
    y = torch.tensor([1, 1, 2])
    loss = torch.nn.functional.cross_entropy(net(x), y)
    assert loss.item() == pytest.approx(math.log(5))
    with torch.no_grad():
        net.weight.copy_(torch.randn(5, 5, generator=torch.Generator().manual_seed(0)))
    one_hot = torch.nn.functional.one_hot(x, 5).float()
    assert torch.allclose(net(x), one_hot @ net.weight)
    assert torch.allclose(net.probs()[2], torch.softmax(net.weight[2], 0))


# --- sampling from logits ------------------------------------------------------------------------


def test_top_k_keeps_the_k_largest_and_their_ties():
    logits = torch.tensor([[1.0, 3.0, 2.0, 3.0, 0.0]])
    kept = text.filter_logits(logits, top_k=2).isfinite()
    assert kept.tolist() == [[False, True, False, True, False]]
    kept = text.filter_logits(logits, top_k=3).isfinite()
    assert kept.tolist() == [[False, True, True, True, False]]
    assert text.filter_logits(logits, top_k=99).isfinite().all()


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()[torch.tensor([2, 0, 3, 1])]  # shuffled: 0.15, 0.5, 0.05, 0.3
    # sorted: 0.5, 0.3, 0.15, 0.05; a token is dropped once the tokens above it hold top_p
    assert text.filter_logits(logits, top_p=0.45).isfinite().tolist() == [False, True, False, False]
    assert text.filter_logits(logits, top_p=0.6).isfinite().tolist() == [False, True, False, True]
    assert text.filter_logits(logits, top_p=0.75).isfinite().tolist() == [False, True, False, True]
    assert text.filter_logits(logits, top_p=0.85).isfinite().tolist() == [True, True, False, True]
    assert text.filter_logits(logits, top_p=1.0).isfinite().all()
    assert text.filter_logits(logits, top_p=0.01).isfinite().sum() == 1  # the top token always stays
    with pytest.raises(ValueError, match="top_p"):
        text.filter_logits(logits, top_p=0.0)


def test_logits_to_probs_applies_temperature_then_filters():
    logits = torch.tensor([2.0, 1.0, 0.0])
    p = text.logits_to_probs(logits, temperature=0.5, top_k=2)
    expected = torch.softmax(torch.tensor([4.0, 2.0]), 0)
    assert torch.allclose(p, torch.cat([expected, torch.zeros(1)]))


def test_sample_logits_frequencies_and_seeding():
    logits = torch.log(torch.tensor([0.6, 0.3, 0.1])).expand(20_000, 3)
    draws = text.sample_logits(logits, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).float() / len(draws)
    assert torch.allclose(freq, torch.tensor([0.6, 0.3, 0.1]), atol=0.015)  # 4.5 standard errors at most
    again = text.sample_logits(logits, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    nucleus = text.sample_logits(logits, top_p=0.7, generator=torch.Generator().manual_seed(0))
    assert set(nucleus.tolist()) == {0, 1}
    assert text.sample_logits(torch.tensor([0.0, 5.0, 1.0])).shape == ()

# --- measuring generated text (notebooks 05 and 07) ------------------------------------------------------------


def test_distinct_n_and_repetition_rate_known_answers():
    sample = "the cat sat on the cat sat"
    assert text.words(sample) == ["the", "cat", "sat", "on", "the", "cat", "sat"]
    assert text.distinct_n(sample, 1) == pytest.approx(4 / 7)
    assert text.distinct_n(sample, 2) == pytest.approx(4 / 6)  # the cat, cat sat, sat on, on the
    assert text.repetition_rate(sample, 2) == pytest.approx(2 / 6)
    assert text.repetition_rate(sample, 4) == 0.0
    loop = "to be or " * 10
    assert text.repetition_rate(loop, 4) == pytest.approx(24 / 27)  # 27 4-grams, 3 of them distinct
    assert text.distinct_n(list("abab"), 2) == pytest.approx(2 / 3)  # any sequence: characters here
    assert text.distinct_n(torch.tensor([1, 2, 1, 2]), 2) == pytest.approx(2 / 3)


def test_char_distinct_n_and_repetition_count_characters_not_words():
    sample = "the cat sat on the mat"
    assert text.distinct_n(sample, 2) == 1.0  # no repeated word pair: word-level distinct-2 at its ceiling
    # characters: 20 trigrams; "the" and "at " occur twice each ("he " too), so 17 are distinct
    assert text.char_distinct_n(sample, 3) == pytest.approx(17 / 20)
    assert text.char_distinct_n("abcabc", 3) == pytest.approx(3 / 4)
    assert text.char_repetition_rate("abcabcabc", 3) == pytest.approx(4 / 7)
    assert text.char_repetition_rate("abcdefghij", 8) == 0.0
    assert text.char_repetition_rate("ab" * 10, 8) == pytest.approx(11 / 13)  # a loop: near 1
    with pytest.raises(ValueError, match="string"):
        text.char_distinct_n(["a", "b", "c"], 2)
    with pytest.raises(ValueError, match="fewer than 8"):
        text.char_repetition_rate("short", 8)


def test_text_metrics_refuse_texts_too_short_to_measure():
    with pytest.raises(ValueError, match="fewer than 3 tokens"):
        text.distinct_n("two words", 3)
    with pytest.raises(ValueError, match="positive int"):
        text.ngrams("a b c", 0)
    with pytest.raises(ValueError, match="string"):
        text.words(["a", "b"])


def test_token_log_probs_are_minus_the_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 5, 9, generator=g), torch.randint(9, (2, 5), generator=g)
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert text.mean_log_prob(logits, targets) == pytest.approx(-ce.item(), abs=1e-6)
    assert text.token_log_probs(torch.zeros(3, 4), torch.tensor([0, 1, 2])).tolist() == \
        pytest.approx([-math.log(4)] * 3)
    with pytest.raises(ValueError, match="vocabulary dimension"):
        text.token_log_probs(logits, targets[:, :3])
    with pytest.raises(ValueError, match="indices"):
        text.token_log_probs(logits, targets.float())


# --- memorisation and vocabulary in text (notebook 07) ---------------------------------------------------------


def test_ngram_overlap_counts_the_shared_ngrams():
    training = "the cat sat on the mat"
    assert text.ngram_overlap("the cat sat on a hat", training, 2) == pytest.approx(3 / 5)  # 3 of 5 pairs
    index = text.ngram_set(training, 2)
    assert index == {("the", "cat"), ("cat", "sat"), ("sat", "on"), ("on", "the"), ("the", "mat")}
    assert text.ngram_overlap("the cat sat on a hat", index, 2) == pytest.approx(3 / 5)
    assert text.ngram_overlap(list("abcab"), list("xabx"), 2) == pytest.approx(2 / 4)  # ab, ab of ab bc ca ab
    with pytest.raises(ValueError, match="ngram_set"):
        text.ngram_overlap("the cat sat", index, 3)  # an index of 2-grams for 3-grams
    with pytest.raises(ValueError, match="fewer than 4"):
        text.ngram_overlap("too short", training, 4)


def test_longest_copied_span_finds_the_longest_verbatim_piece():
    training = "To be, or not to be, that is the question"
    assert text.longest_copied_span("Oh, not to be, that is it", training) == " not to be, that is "
    assert text.longest_copied_span("xyz", training) == ""
    assert text.longest_copied_span(training, training) == training
    g = torch.Generator().manual_seed(0)
    letters = "abc"
    for _ in range(20):  # against a brute force on random strings
        query = "".join(letters[i] for i in torch.randint(3, (12,), generator=g).tolist())
        ref = "".join(letters[i] for i in torch.randint(3, (15,), generator=g).tolist())
        best = max((query[i:j] for i in range(len(query)) for j in range(i, len(query) + 1) if query[i:j] in ref),
                   key=len)
        assert len(text.longest_copied_span(query, ref)) == len(best)
    with pytest.raises(ValueError, match="two strings"):
        text.longest_copied_span(["a"], "a")


def test_known_word_share_ignores_case_and_punctuation():
    vocab = text.word_set("Thee, sir! What say'st thou?")
    assert vocab == {"thee", "sir", "what", "say'st", "thou"}
    assert text.known_word_share("THEE sir: blorp. What?", vocab) == pytest.approx(3 / 4)
    assert text.normalise_word("'Tis,") == "tis"
    with pytest.raises(ValueError, match="non-empty set"):
        text.known_word_share("thee", set())
    with pytest.raises(ValueError, match="no words"):
        text.known_word_share(" ... ", vocab)
