"""course_utils.exercises.basics: notebook 01's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import text
from course_utils.exercises import basics
from tests.checks import assert_right, assert_wrong

# --- exercise 1: a trigram model ------------------------------------------------------------------


def trigram(starts=2, end=True, total=False, bits=False, full_denominator=True):
    def nll(train, val, vocab, alpha):
        v, b = len(vocab), vocab.boundary
        counts = {}
        pad = lambda w: b * starts + w + (b if end else "")
        for w in train:
            w = pad(w)
            for i in range(2, len(w)):
                counts[w[i - 2:i]] = counts.get(w[i - 2:i], {})
                counts[w[i - 2:i]][w[i]] = counts[w[i - 2:i]].get(w[i], 0) + 1
        logs = []
        for w in val:
            w = pad(w)
            for i in range(2, len(w)):
                row = counts.get(w[i - 2:i], {})
                denom = sum(row.values()) + (alpha * v if full_denominator else alpha)
                logs.append(math.log((row.get(w[i], 0) + alpha) / denom))
        value = -sum(logs) if total else -sum(logs) / len(logs)
        return value / math.log(2) if bits else value

    return nll


def test_trigram_reference_by_hand():
    vocab = text.build_vocab(["ab"], boundary=".")  # . a b
    # train "..ab.": (..)->a, (.a)->b, (ab)->. ; val "..b.": (..)->b, (.b)->. with alpha = 1, V = 3
    p1, p2 = (0 + 1) / (1 + 3), (0 + 1) / (0 + 3)
    expected = -(math.log(p1) + math.log(p2)) / 2
    assert basics.trigram_reference(["ab"], ["b"], vocab, 1.0) == pytest.approx(expected)
    assert trigram()(["ab"], ["b"], vocab, 1.0) == pytest.approx(expected)


def test_trigram_nll():
    assert_right(basics.check_trigram_nll(trigram()))
    assert_wrong(basics.check_trigram_nll(trigram(starts=1)), "two boundary tokens")
    assert_wrong(basics.check_trigram_nll(trigram(end=False)), "end token")
    assert_wrong(basics.check_trigram_nll(trigram(total=True)), "total")
    assert_wrong(basics.check_trigram_nll(trigram(bits=True)), "bits")
    assert_wrong(basics.check_trigram_nll(trigram(full_denominator=False)), "sum to 1")
    assert_wrong(basics.check_trigram_nll(lambda tr, va, vocab, alpha: trigram()(tr, va, vocab, 0.5)), "alpha")
    assert_wrong(basics.check_trigram_nll(lambda *a: 9.0), "expected about")
    assert_wrong(basics.check_trigram_nll(...), "not done yet")


# --- exercise 2: the penalised neural bigram ----------------------------------------------------------


def test_penalised_loss():
    right = lambda W, x, y, lam: F.cross_entropy(W[x], y) + lam * W.square().sum()
    assert_right(basics.check_penalised_loss(right))
    assert_wrong(basics.check_penalised_loss(lambda W, x, y, lam: F.cross_entropy(W[x], y)), "penalty is missing")
    assert_wrong(basics.check_penalised_loss(lambda W, x, y, lam: F.cross_entropy(W[x], y) + lam * W.square().mean()),
                 "not their mean")
    assert_wrong(basics.check_penalised_loss(lambda W, x, y, lam: F.cross_entropy(W[x], y) + lam * W.abs().sum()),
                 "L1")
    assert_wrong(basics.check_penalised_loss(lambda W, x, y, lam: F.cross_entropy(W[x], y) - lam * W.square().sum()),
                 "not subtracted")
    assert_wrong(basics.check_penalised_loss(lambda W, x, y, lam: F.nll_loss(W[x], y) + lam * W.square().sum()),
                 "log-softmax")
    assert_wrong(basics.check_penalised_loss(lambda W, x, y, lam: (F.cross_entropy(W[x], y) + lam * W.square().sum())
                                             .item()), "graph")


# --- exercise 3: interpolation in PCA space -----------------------------------------------------------


def interpolate(x_a, x_b, mean, components, k, steps):
    v = components[:, :k]
    z_a, z_b = (x_a - mean) @ v, (x_b - mean) @ v
    t = torch.linspace(0, 1, steps)[:, None]
    return ((1 - t) * z_a + t * z_b) @ v.T + mean


def test_pca_interpolation():
    assert_right(basics.check_pca_interpolation(interpolate))
    crossfade = lambda a, b, mean, comp, k, steps: (1 - torch.linspace(0, 1, steps)[:, None]) * a + \
        torch.linspace(0, 1, steps)[:, None] * b
    assert_wrong(basics.check_pca_interpolation(crossfade), "cross-fade")
    assert_wrong(basics.check_pca_interpolation(lambda a, b, mean, comp, k, s: interpolate(a, b, mean, comp, k, s)
                                                - mean), "add the mean back")
    assert_wrong(basics.check_pca_interpolation(lambda a, b, mean, comp, k, s: interpolate(b, a, mean, comp, k, s)),
                 "backwards")
    assert_wrong(basics.check_pca_interpolation(lambda a, b, mean, comp, k, s: interpolate(a, b, mean, comp, k, s + 1)),
                 "shape")


def test_pca_interpolation_of_a_linear_model_is_a_projected_crossfade():
    """The fact section 4 asserts: for PCA, walking between codes = projecting the pixel cross-fade."""
    x, pca = basics._pca_fixture()
    t = torch.linspace(0, 1, 7)[:, None]
    crossfade = (1 - t) * x[0] + t * x[1]
    assert torch.allclose(interpolate(x[0], x[1], pca.mean, pca.components, 2, 7), pca.reconstruct(crossfade, 2),
                          atol=1e-5)


# --- exercise 4: a stratified validation split ------------------------------------------------


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
