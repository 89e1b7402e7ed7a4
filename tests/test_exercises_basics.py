"""course_utils.exercises.basics: notebook 01's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import text
from course_utils.exercises import basics
from tests.checks import assert_right, assert_wrong

# --- exercise 1: sampling from a Gaussian mixture -------------------------------------------


def sampler(variant: str = "right"):
    def sample(weights, means, stds, n, generator):
        if variant == "uniform":
            k = torch.randint(len(weights), (n,), generator=generator)
        elif variant == "one":
            k = torch.zeros(n, dtype=torch.long)
        else:
            k = torch.multinomial(weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, means.shape[1], generator=generator)
        if variant == "unseeded":
            eps = torch.randn(n, means.shape[1])
        wrong_scales = {"variance": stds**2, "no noise": torch.zeros_like(stds), "unit": torch.ones_like(stds)}
        scale = wrong_scales.get(variant, stds)
        return means[k] + scale[k] * eps

    return sample


def test_gmm_sampler():
    assert_right(basics.check_gmm_sampler(sampler()))
    assert_wrong(basics.check_gmm_sampler(sampler("uniform")), "about equally often", "torch.multinomial")
    assert_wrong(basics.check_gmm_sampler(sampler("one")), "all the samples come from one component")
    assert_wrong(basics.check_gmm_sampler(sampler("variance")), "variance, not its standard deviation")
    assert_wrong(basics.check_gmm_sampler(sampler("no noise")), "add the noise")
    assert_wrong(basics.check_gmm_sampler(sampler("unit")), "does not match its standard deviations")
    assert_wrong(basics.check_gmm_sampler(sampler("unseeded")), "generator=generator")


def test_gmm_sampler_bad_answers_never_raise():
    assert_wrong(basics.check_gmm_sampler(lambda *a: torch.zeros(5, 2)), "shape (20000, 2)")
    assert_wrong(basics.check_gmm_sampler(lambda *a: [0.0, 1.0]), "torch.Tensor")
    assert_wrong(basics.check_gmm_sampler(lambda w, m: m), "your sampler raised TypeError")
    assert_wrong(basics.check_gmm_sampler(None), "should be a function")


# --- exercise 2: bigram probabilities ------------------------------------------------------


@pytest.fixture
def bigram():
    words = ["emma", "ava", "bob", "anna", "eve", "mae"]
    vocab = text.build_vocab(words, boundary=".")
    return words, vocab, text.bigram_counts(words, vocab)


def test_bigram_probs(bigram):
    _, vocab, counts = bigram
    right = (counts + 1) / (counts + 1).sum(1, keepdim=True)
    assert_right(basics.check_bigram_probs(right, counts, vocab=vocab))
    assert_right(basics.check_bigram_probs(text.counts_to_probs(counts, 0.5), counts, alpha=0.5))
    by_column = (counts + 1) / (counts + 1).sum(0, keepdim=True)
    assert_wrong(basics.check_bigram_probs(by_column, counts), "sum to 1 along dim 0", "dim=1")
    by_total = (counts + 1) / (counts + 1).sum()
    assert_wrong(basics.check_bigram_probs(by_total, counts), "whole table sums to 1")
    not_normalised = counts + 1
    assert_wrong(basics.check_bigram_probs(not_normalised, counts, vocab=vocab),
                 "do not sum to 1 along dim 1", "row")
    assert (counts.sum(1) > 0).all()  # every symbol is followed by something, if only by '.'
    unsmoothed = counts / counts.sum(1, keepdim=True)
    assert_wrong(basics.check_bigram_probs(unsmoothed, counts), "unsmoothed", "add alpha = 1")
    assert_wrong(basics.check_bigram_probs(text.counts_to_probs(counts, 2.0), counts), "alpha = 2")
    assert_wrong(basics.check_bigram_probs(torch.softmax(counts, 1), counts, vocab=vocab), "largest difference")


def test_bigram_probs_bad_answers(bigram):
    _, _, counts = bigram
    assert_wrong(basics.check_bigram_probs(counts.tolist(), counts), "torch.Tensor")
    assert_wrong(basics.check_bigram_probs(torch.ones(3, 3) / 3, counts), "shape")
    assert_wrong(basics.check_bigram_probs(counts.long(), counts), "dtype")
    negative = text.counts_to_probs(counts)
    negative[0, 0] -= 0.5
    negative[0, 1] += 0.5  # rows still sum to 1
    assert_wrong(basics.check_bigram_probs(negative, counts), "negative")


# --- exercise 3: NLL per character -----------------------------------------------------------


def test_nll_per_char(bigram):
    words, vocab, counts = bigram
    probs = text.counts_to_probs(counts, 1.0)
    xs, ys = text.bigram_pairs(words, vocab)
    logp = probs[xs, ys].log()
    right = -logp.mean()
    assert_right(basics.check_nll_per_char(right, probs, words, vocab))
    assert_right(basics.check_nll_per_char(right.item(), probs, words, vocab))
    assert_wrong(basics.check_nll_per_char(logp.mean(), probs, words, vocab), "negative", "-log p")
    assert_wrong(basics.check_nll_per_char(-(probs[xs, ys].log2()).mean(), probs, words, vocab), "bits")
    assert_wrong(basics.check_nll_per_char(-logp.sum(), probs, words, vocab), "total", "divide")
    assert_wrong(basics.check_nll_per_char(-logp[ys != 0].mean(), probs, words, vocab), "end token")
    per_word = torch.stack([-probs[text.bigram_pairs([w], vocab)].log().mean() for w in words]).mean()
    assert_wrong(basics.check_nll_per_char(per_word, probs, words, vocab), "averaged within each name")
    assert_wrong(basics.check_nll_per_char(7.0, probs, words, vocab), "expected a positive number near")


def test_nll_per_char_bad_answers(bigram):
    words, vocab, counts = bigram
    probs = text.counts_to_probs(counts, 1.0)
    assert_wrong(basics.check_nll_per_char("2.4", probs, words, vocab), "should be a number")
    assert_wrong(basics.check_nll_per_char(torch.ones(3), probs, words, vocab), "one number")
    assert_wrong(basics.check_nll_per_char(math.inf, probs, words, vocab), "finite")


# --- exercise 4: PCA reconstruction ------------------------------------------------------------


def test_pca_reconstruction():
    assert_right(basics.check_pca_reconstruction(
        lambda x, mean, v, k: ((x - mean) @ v[:, :k]) @ v[:, :k].T + mean))
    assert_wrong(basics.check_pca_reconstruction(
        lambda x, mean, v, k: ((x - mean) @ v[:, :k]) @ v[:, :k].T), "add the mean back")
    assert_wrong(basics.check_pca_reconstruction(
        lambda x, mean, v, k: (x @ v[:, :k]) @ v[:, :k].T + mean), "subtract the mean")
    assert_wrong(basics.check_pca_reconstruction(
        lambda x, mean, v, k: ((x - mean) @ v[:k].T) @ v[:k] + mean), "rows", "columns")
    assert_wrong(basics.check_pca_reconstruction(
        lambda x, mean, v, k: ((x - mean) @ v[:, -k:]) @ v[:, -k:].T + mean), "least")
    assert_wrong(basics.check_pca_reconstruction(lambda x, mean, v, k: x * 0.9), "differs from")


def test_pca_reconstruction_bad_answers():
    assert_wrong(basics.check_pca_reconstruction(lambda x, mean, v, k: x[:, :k]), "shape")
    assert_wrong(basics.check_pca_reconstruction(lambda x, mean, v: x), "raised TypeError")
    assert_wrong(basics.check_pca_reconstruction(lambda x, mean, v, k: x.numpy()), "torch.Tensor")


# --- exercise 5: a stratified validation split ------------------------------------------------


@pytest.fixture
def labels():
    g = torch.Generator().manual_seed(0)
    return torch.randint(5, (1000,), generator=g)


def stratified(labels, fraction=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    val = []
    for c in range(int(labels.max()) + 1):
        idx = torch.nonzero(labels == c)[:, 0]
        val.append(idx[torch.randperm(len(idx), generator=g)[: round(fraction * len(idx))]])
    val = torch.cat(val)
    train = torch.nonzero(~torch.isin(torch.arange(len(labels)), val))[:, 0]
    return train, val


def test_stratified_split(labels):
    train, val = stratified(labels)
    assert_right(basics.check_stratified_split(train, val, labels))
    assert_right(basics.check_stratified_split(*stratified(labels, 0.2), labels, val_fraction=0.2))
    assert_wrong(basics.check_stratified_split(torch.cat([train, val[:7]]), val, labels), "7 indices are in both")
    assert_wrong(basics.check_stratified_split(train[:-3], val, labels), "3 are missing")
    # a plain random split: the classes' shares wander around 10%
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(3))
    assert_wrong(basics.check_stratified_split(perm[100:], perm[:100], labels), "share of each class",
                 "split each class separately")
    first = torch.cat([torch.nonzero(labels == c)[: round(0.1 * int((labels == c).sum())), 0] for c in range(5)])
    rest = torch.nonzero(~torch.isin(torch.arange(1000), first))[:, 0]
    assert_wrong(basics.check_stratified_split(rest, first, labels), "first images of each class", "shuffle")


def test_stratified_split_bad_answers(labels):
    train, val = stratified(labels)
    assert_wrong(basics.check_stratified_split(train.tolist(), val, labels), "torch.Tensor of indices")
    mask = torch.zeros(1000, dtype=torch.bool)
    mask[val] = True
    assert_wrong(basics.check_stratified_split(train, mask, labels), "boolean mask")
    assert_wrong(basics.check_stratified_split(train, val.float(), labels), "integer indices")
    assert_wrong(basics.check_stratified_split(train, val + 5000, labels), "outside 0..999")
