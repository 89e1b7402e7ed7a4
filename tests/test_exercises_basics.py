"""course_utils.exercises.basics: notebook 01's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import text
from course_utils.exercises import basics
from course_utils.solutions.basics import pca_interpolate, penalised_loss, stratified_split, trigram_nll
from tests.checks import assert_not_done, assert_right, assert_wrong

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
    assert trigram_nll(["ab"], ["b"], vocab, 1.0) == pytest.approx(expected)
    # the package's n-gram (section 3.5 of the notebook uses it after the exercise) agrees with both
    assert text.ngram_nll(["ab"], ["b"], vocab, 3, 1.0) == pytest.approx(expected)
    words, val = basics.TRIGRAM_TRAIN, basics.TRIGRAM_VAL
    vocab = text.build_vocab(words + val, boundary=".")
    assert text.ngram_nll(words, val, vocab, 3, 0.5) == pytest.approx(trigram_nll(words, val, vocab, 0.5), rel=1e-5)


def test_trigram_nll():
    assert_right(basics.check_trigram_nll(trigram_nll))
    assert_right(basics.check_trigram_nll(trigram()))
    assert_wrong(basics.check_trigram_nll(trigram(starts=1)), "two boundary tokens")
    assert_wrong(basics.check_trigram_nll(trigram(end=False)), "end token")
    assert_wrong(basics.check_trigram_nll(trigram(total=True)), "total")
    assert_wrong(basics.check_trigram_nll(trigram(bits=True)), "bits")
    assert_wrong(basics.check_trigram_nll(trigram(full_denominator=False)), "sum to 1")
    assert_wrong(basics.check_trigram_nll(lambda tr, va, vocab, alpha: trigram()(tr, va, vocab, 0.5)), "alpha")
    assert_wrong(basics.check_trigram_nll(lambda *a: 9.0), "expected about")
    assert_not_done(basics.check_trigram_nll(...))


# --- exercise 2: the penalised neural bigram ----------------------------------------------------------


def test_penalised_loss():
    assert_right(basics.check_penalised_loss(penalised_loss))
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
    assert_not_done(basics.check_penalised_loss(...))


def test_adam_weight_decay_trains_the_penalised_loss():
    """What section 3.7 says: Adam's weight_decay=2 lam takes the same steps as Adam on the penalised loss."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(5, (40,), generator=g), torch.randint(5, (40,), generator=g)
    W_start = torch.randn(5, 5, generator=g)
    W_pen, W_wd = W_start.clone().requires_grad_(), W_start.clone().requires_grad_()
    opt_pen, opt_wd = torch.optim.Adam([W_pen], lr=0.2), torch.optim.Adam([W_wd], lr=0.2, weight_decay=2 * 0.01)
    for _ in range(20):
        for opt, loss in ((opt_pen, penalised_loss(W_pen, x, y, 0.01)), (opt_wd, F.cross_entropy(W_wd[x], y))):
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert torch.allclose(W_pen, W_wd, atol=1e-5)
    assert (W_wd - W_start).abs().max() > 0.5  # the weights did move
    W_plain = W_start.clone().requires_grad_()  # and without the decay they move elsewhere: the test can fail
    opt = torch.optim.Adam([W_plain], lr=0.2)
    for _ in range(20):
        opt.zero_grad()
        F.cross_entropy(W_plain[x], y).backward()
        opt.step()
    assert not torch.allclose(W_plain, W_wd, atol=1e-3)


# --- exercise 3: interpolation in PCA space -----------------------------------------------------------


def interpolate(x_a, x_b, mean, components, k, steps):
    v = components[:, :k]
    z_a, z_b = (x_a - mean) @ v, (x_b - mean) @ v
    t = torch.linspace(0, 1, steps)[:, None]
    return ((1 - t) * z_a + t * z_b) @ v.T + mean


def test_pca_interpolation():
    assert_right(basics.check_pca_interpolation(pca_interpolate))
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
    first_pixels = lambda a, b, mean, comp, k, s: interpolate(a, b, mean, comp, k, s)[:, :3]
    assert_wrong(basics.check_pca_interpolation(first_pixels), "shape")
    ends_only = lambda a, b, mean, comp, k, s: torch.cat([interpolate(a, b, mean, comp, k, 2)[:1].expand(s - 1, -1),
                                                           interpolate(a, b, mean, comp, k, 2)[1:]])
    assert_wrong(basics.check_pca_interpolation(ends_only), "points between the ends")
    open_end = lambda a, b, mean, comp, k, s: interpolate(a, b, mean, comp, k, s + 1)[:-1]
    assert_wrong(basics.check_pca_interpolation(open_end), "both ends included")
    assert_not_done(basics.check_pca_interpolation(...))


def test_pca_interpolation_of_a_linear_model_is_a_projected_crossfade():
    """The fact section 4 asserts: for PCA, walking between codes = projecting the pixel cross-fade."""
    x, pca = basics._pca_fixture()
    t = torch.linspace(0, 1, 7)[:, None]
    crossfade = (1 - t) * x[0] + t * x[1]
    assert torch.allclose(interpolate(x[0], x[1], pca.mean, pca.components, 2, 7), pca.reconstruct(crossfade, 2),
                          atol=1e-5)
    assert torch.allclose(pca.interpolate(x[0], x[1], 2, 7), pca.reconstruct(crossfade, 2), atol=1e-5)


# --- exercise 3: a stratified validation split ------------------------------------------------


def first_of_each_class(labels, fraction, generator):
    val = torch.cat([torch.nonzero(labels == c)[: round(fraction * int((labels == c).sum())), 0]
                     for c in labels.unique()])
    return torch.nonzero(~torch.isin(torch.arange(len(labels)), val))[:, 0], val


def random_split(labels, fraction, generator):
    perm = torch.randperm(len(labels), generator=generator)
    return perm[round(fraction * len(labels)):], perm[: round(fraction * len(labels))]


def changed(change):
    """The reference split, then ``change(train_idx, val_idx)``: a learner's mistake."""
    return lambda labels, fraction, generator: change(*stratified_split(labels, fraction, generator))


def test_stratified_split():
    assert_right(basics.check_stratified_split(stratified_split))
    labels = basics._split_labels()
    train, val = stratified_split(labels, 0.1, torch.Generator().manual_seed(0))
    assert len(val) == 100 and not torch.isin(val, train).any() and len(train) + len(val) == 1000
    assert_wrong(basics.check_stratified_split(changed(lambda tr, va: (torch.cat([tr, va[:7]]), va))),
                 "7 indices are in both")
    assert_wrong(basics.check_stratified_split(changed(lambda tr, va: (tr[:-3], va))), "3 are missing")
    assert_wrong(basics.check_stratified_split(random_split), "share of each class", "split each class separately")
    assert_wrong(basics.check_stratified_split(first_of_each_class), "first examples of each class", "shuffle")
    assert_wrong(basics.check_stratified_split(lambda lab, f, g: stratified_split(lab, 0.1, g)),
                 "use the val_fraction you are given")
    assert_wrong(basics.check_stratified_split(lambda lab, f, g: stratified_split(lab, f, None)),
                 "same generator seed gave two different splits")
    own = lambda lab, f, g: stratified_split(lab, f, torch.Generator().manual_seed(5))
    assert_wrong(basics.check_stratified_split(own), "another generator seed gave the same split")
    assert_wrong(basics.check_stratified_split(changed(lambda tr, va: (va, tr))), "val_idx is the larger part")
    assert_not_done(basics.check_stratified_split(...))


def test_stratified_split_bad_answers():
    assert_wrong(basics.check_stratified_split(changed(lambda tr, va: (tr.tolist(), va))), "torch.Tensor of indices")
    mask = lambda va: torch.zeros(1000, dtype=torch.bool).index_fill(0, va, True)
    assert_wrong(basics.check_stratified_split(changed(lambda tr, va: (tr, mask(va)))), "boolean mask")
    assert_wrong(basics.check_stratified_split(changed(lambda tr, va: (tr, va.float()))), "integer indices")
    assert_wrong(basics.check_stratified_split(changed(lambda tr, va: (tr, va + 5000))), "outside 0..999")
    assert_wrong(basics.check_stratified_split(changed(lambda tr, va: torch.cat([tr, va]))), "return two tensors")
    assert_wrong(basics.check_stratified_split(lambda lab, f, g: 1 / 0), "raised ZeroDivisionError")
