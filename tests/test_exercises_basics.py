"""course_utils.exercises.basics: notebook 01's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from course_utils import text
from course_utils.exercises import basics
from course_utils.solutions.basics import (
    best_bias,
    pca_interpolate,
    sample_name,
    stratified_split,
    trigram_nll,
    walk_source,
)
from tests.checks import assert_not_done, assert_right, assert_wrong

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest

# --- exercise 2: sampling a name, with a temperature ------------------------------------------------


def sampler(weights="log", start=None, stop=True, keep_end=False, cap=True, greedy=False, own_generator=None,
            shared_rng=False, prefix_row="last", use_prefix=True, prefix_counts=True):
    """A learner's sample_name, right by default, or with one mistake."""
    def sample(P, vocab, generator, temperature=1.0, max_len=50, prefix=""):
        if own_generator is not None:
            generator = torch.Generator().manual_seed(own_generator)
        prefix = prefix if use_prefix else ""
        row = {"last": -1, "first": 0}.get(prefix_row)
        current = vocab.stoi[prefix[row]] if prefix and row is not None else 0
        current = current if start is None else start
        name = prefix if prefix_counts else ""
        while len(name) < (max_len if cap else 10 ** 6):
            row = P[current]
            probs = {"log": lambda r: torch.softmax(r.log() / temperature, 0),
                     "power": lambda r: r ** (1 / temperature),  # the same distribution, unnormalised
                     "prob": lambda r: r / temperature,
                     "softmax": lambda r: torch.softmax(r / temperature, 0),
                     "times": lambda r: torch.softmax(r.log() * temperature, 0)}[weights](row)
            if greedy:
                current = int(probs.argmax())
            else:
                current = int(torch.multinomial(probs, 1, generator=None if shared_rng else generator))
            if current == 0:
                if keep_end:
                    name += vocab.itos[0]
                if stop:
                    break
                continue
            name += vocab.itos[current]
        return name if prefix_counts else prefix + name

    return sample


def test_sample_name():
    assert_right(basics.check_sample_name(sample_name))
    assert_right(basics.check_sample_name(sampler()))
    assert_right(basics.check_sample_name(sampler(weights="power")))
    # the package's sampler (section 3.3 of the notebook uses it) draws the same names from the same seed
    for temperature in (0.5, 1.0, 2.0):
        g = torch.Generator().manual_seed(0)
        package = [text.sample_names(basics.SAMPLE_P, basics.SAMPLE_VOCAB, 1, generator=g, temperature=temperature,
                                     max_len=basics.SAMPLE_MAX_LEN)[0] for _ in range(basics.SAMPLE_NAMES)]
        assert package == basics._reference_names(temperature)
    assert_wrong(basics.check_sample_name(sampler(weights="prob")), "same names as at T = 1", "log-probabilities")
    assert_wrong(basics.check_sample_name(sampler(weights="softmax")), "not logits")
    assert_wrong(basics.check_sample_name(sampler(weights="times")), "do not multiply")
    assert_wrong(basics.check_sample_name(sampler(greedy=True)), "argmax", "not sampling")
    assert_wrong(basics.check_sample_name(sampler(stop=False, keep_end=True)), "goes on after '.'")
    assert_wrong(basics.check_sample_name(sampler(stop=False)), "every name has max_len")
    assert_wrong(basics.check_sample_name(sampler(keep_end=True)), "end with '.'")
    assert_wrong(basics.check_sample_name(sampler(start=2)), "row of 'b'", "index 0")
    assert_wrong(basics.check_sample_name(sampler(cap=False)), "max_len")
    assert_wrong(basics.check_sample_name(sampler(shared_rng=True)), "same seed gave different names")
    assert basics._greedy_name() == "a"
    assert_wrong(basics.check_sample_name(sampler(own_generator=3)), "each call repeats the same draws")
    assert_wrong(basics.check_sample_name(sampler(use_prefix=False)), "prefix is ignored")
    assert_wrong(basics.check_sample_name(sampler(prefix_row=None)), "row of '.'", "last letter")
    assert_wrong(basics.check_sample_name(sampler(prefix_row="first")), "row of its first letter")
    assert_wrong(basics.check_sample_name(sampler(prefix_counts=False)), "prefix's letters too")
    no_prefix = lambda P, vocab, g, t, m, prefix="": sampler()(P, vocab, g, t, m)[len(prefix):]  # noqa: E731
    assert_wrong(basics.check_sample_name(no_prefix), "do not start with it")
    old_signature = lambda P, vocab, g, t, m: sample_name(P, vocab, g, t, m)  # noqa: E731
    assert_wrong(basics.check_sample_name(old_signature), "prefix")
    own_once = torch.Generator().manual_seed(3)  # one generator of the learner's own, made once
    assert_wrong(basics.check_sample_name(lambda P, vocab, g, t, m: sample_name(P, vocab, own_once, t, m)),
                 "same seed gave different names")
    assert_wrong(basics.check_sample_name(lambda P, vocab, g, t, m: [1, 2]), "string")
    wrong_temp = lambda P, vocab, g, t, m: sample_name(P, vocab, g, 1.0 if t == 1.0 else t * 1.3, m)
    assert_wrong(basics.check_sample_name(wrong_temp), "right at T = 1 but not at T = 0.5")
    two_draws = lambda P, vocab, g, t, m: (torch.rand(1, generator=g), sample_name(P, vocab, g, t, m))[1]
    assert_wrong(basics.check_sample_name(two_draws), "differ from a reference draw")
    assert_not_done(basics.check_sample_name(...))


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



# --- the prediction after exercise 1: checked in Run All, its scores hidden -------------------------------------------


def test_trigram_prediction_holds_fails_and_hides_the_scores():
    words = ["ab", "ba"] * 200  # after '.a' comes 'b', after 'ab' the end: two characters tell, one does not
    vocab = text.build_vocab(words, boundary=".")
    bigram = text.ngram_nll(words, words, vocab, 2, 1.0)
    message = basics.check_trigram_prediction(words, words, vocab, bigram)
    assert "hidden" in message and not re.search(r"\d", re.sub(r"0\.01|0\.1|\b1\b", "", message))  # no score
    with pytest.raises(AssertionError, match="not the add-one bigram"):
        basics.check_trigram_prediction(words, words, vocab, bigram + 0.01)
    single = ["a", "b"] * 100  # one letter per word: the second character of context is always '.'
    with pytest.raises(AssertionError, match="gains only"):
        basics.check_trigram_prediction(single, single, vocab, text.ngram_nll(single, single, vocab, 2, 1.0))
    few = ["ab", "ba"]  # two words: the choice of alpha matters more than a fifth of the gain
    with pytest.raises(AssertionError, match="a fifth"):
        basics.check_trigram_prediction(few, few, vocab, text.ngram_nll(few, few, vocab, 2, 1.0))

# --- exercise 4: what the bias learns when a penalty pulls W to 0 ---------------------------------------------


def _shares(v, V):
    return torch.bincount(v, minlength=V).float() / len(v)


def test_best_bias():
    assert_right(basics.check_best_bias(best_bias))
    assert_right(basics.check_best_bias(lambda x, y, V: torch.bincount(y, minlength=V).float().log() + 3.0))  # shifted
    wrong = {
        "uniform row": lambda x, y, V: torch.zeros(V),
        "softmax exponentiates b": lambda x, y, V: _shares(y, V),
        "wrong way round": lambda x, y, V: -_shares(y, V).log(),
        "shares of the current symbols x": lambda x, y, V: _shares(x, V).log(),
        "think about the targets y": lambda x, y, V: _shares(x, V),
        "no pseudo-counts": lambda x, y, V: (torch.bincount(y, minlength=V).float() + 1).log(),
        "which row makes": lambda x, y, V: torch.arange(V).float(),
        "shape (6,)": lambda x, y, V: _shares(y, V).log()[:-1],
        "torch.Tensor": lambda x, y, V: _shares(y, V).log().tolist(),
    }
    for fragment, fn in wrong.items():
        assert_wrong(basics.check_best_bias(fn), fragment)
    counts_hint = basics.check_best_bias(lambda x, y, V: torch.bincount(y, minlength=V).float())
    assert_wrong(counts_hint, "softmax exponentiates b")  # the raw counts, as well as the shares
    assert_not_done(basics.check_best_bias(...))


def test_the_best_bias_is_what_training_finds():
    """What exercise 4 claims: with W = 0, gradient descent on b alone ends at the reference bias (up to a constant)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(6, (400,), generator=g), torch.multinomial(basics.BIAS_Y_PROBS, 400, True, generator=g)
    b = torch.zeros(6, requires_grad=True)
    opt = torch.optim.Adam([b], lr=0.1)
    for _ in range(2000):
        opt.zero_grad()
        F.cross_entropy(b.expand(400, 6), y).backward()  # W = 0: every row is b
        opt.step()
    assert torch.allclose(torch.softmax(b, 0), torch.softmax(best_bias(x, y, 6), 0), atol=1e-3)
    assert not torch.allclose(torch.softmax(b, 0), _shares(x, 6), atol=1e-2)  # not the current symbols' shares


def penalised_loss(W, b, x, y, lam):
    """The penalised loss of section 6: the cross-entropy of W[x] + b, plus lam times the sum of W's squares."""
    return F.cross_entropy(W[x] + b, y) + lam * W.square().sum()


def _adam_steps(W, b, loss_of, groups, steps=20):
    opt = torch.optim.Adam(groups, lr=0.2)
    for _ in range(steps):
        opt.zero_grad()
        loss_of(W, b).backward()
        opt.step()


def test_adam_weight_decay_trains_the_penalised_loss():
    """What section 6 says: Adam's weight_decay=2 lam on W alone (a parameter group for b with weight_decay=0)
    takes the same steps as Adam on the penalised loss that exercise 4 describes."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(5, (40,), generator=g), torch.randint(5, (40,), generator=g)
    W_start, b_start = torch.randn(5, 5, generator=g), torch.randn(5, generator=g)
    fresh = lambda: (W_start.clone().requires_grad_(), b_start.clone().requires_grad_())
    W_pen, b_pen = fresh()
    _adam_steps(W_pen, b_pen, lambda W, b: penalised_loss(W, b, x, y, 0.01), [W_pen, b_pen])
    W_wd, b_wd = fresh()
    plain = lambda W, b: F.cross_entropy(W[x] + b, y)
    groups = [{"params": [W_wd], "weight_decay": 2 * 0.01}, {"params": [b_wd], "weight_decay": 0}]
    _adam_steps(W_wd, b_wd, plain, groups)
    assert torch.allclose(W_pen, W_wd, atol=1e-5) and torch.allclose(b_pen, b_wd, atol=1e-5)
    assert (W_wd - W_start).abs().max() > 0.5  # the weights did move
    W_all, b_all = fresh()  # decaying the bias too trains another loss: the test can fail
    _adam_steps(W_all, b_all, plain, [{"params": [W_all, b_all], "weight_decay": 2 * 0.01}])
    assert not torch.allclose(b_all, b_wd, atol=1e-3)
    W_plain, b_plain = fresh()  # and without the decay the weights move elsewhere
    _adam_steps(W_plain, b_plain, plain, [W_plain, b_plain])
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


def test_walk_source():
    assert_right(basics.check_walk_source(walk_source))
    assert_wrong(basics.check_walk_source(lambda a, b, t: t * a + (1 - t) * b), "backwards")
    x, pca = basics._pca_fixture()
    off_span = pca.components[:, 2]  # a direction that PCA with k = 2 drops: same projection, another image
    assert_wrong(basics.check_walk_source(lambda a, b, t: walk_source(a, b, t) + off_span), "weights of x_a and x_b")
    assert_wrong(basics.check_walk_source(lambda a, b, t: (a + b).expand(len(t), -1) / 2), "does not project")
    assert_wrong(basics.check_walk_source(lambda a, b, t: walk_source(a, b, t)[:, :3]), "shape")
    by_package = lambda a, b, t: pca.reconstruct(walk_source(a, b, t), 2)
    assert_wrong(basics.check_walk_source(by_package), "write it yourself")
    assert_not_done(basics.check_walk_source(...))


def test_pca_interpolation_of_a_linear_model_is_a_projected_crossfade():
    """The fact section 4 asserts: for PCA, walking between codes = projecting the pixel cross-fade."""
    x, pca = basics._pca_fixture()
    t = torch.linspace(0, 1, 7)[:, None]
    crossfade = (1 - t) * x[0] + t * x[1]
    assert torch.allclose(interpolate(x[0], x[1], pca.mean, pca.components, 2, 7), pca.reconstruct(crossfade, 2),
                          atol=1e-5)
    assert torch.allclose(pca.interpolate(x[0], x[1], 2, 7), pca.reconstruct(crossfade, 2), atol=1e-5)


# --- exercise 5: a stratified validation split ------------------------------------------------


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


# --- every exercise refuses the package's one-liner that answers it -------------------------------------------


def test_sample_name_refuses_the_package_samplers():
    """text.sample_names draws the right names: the checker refuses it (and the helpers that do the temperature),
    even when the refusal is caught and a right answer follows, and puts them back afterwards."""
    originals = [getattr(owner, attr) for owner, attr in basics.SAMPLE_SHORTCUTS]

    def by_sample_names(P, vocab, g, t, m, prefix=""):
        return prefix + text.sample_names(P, vocab, 1, generator=g, temperature=t, max_len=m - len(prefix))[0]

    def by_sample_logits(P, vocab, g, t, m, prefix=""):  # the loop written, each draw left to the package
        name, current = prefix, vocab.stoi[prefix[-1]] if prefix else 0
        while len(name) < m:
            current = int(text.sample_logits(P[current].log(), t, generator=g))
            if current == 0:
                break
            name += vocab.itos[current]
        return name

    def by_apply_temperature(P, vocab, g, t, m, prefix=""):
        return sample_name(text.apply_temperature(P, t), vocab, g, 1.0, m, prefix)

    def hidden(P, vocab, g, t, m, prefix=""):
        try:
            return by_sample_names(P, vocab, g, t, m)
        except Exception:
            return sample_name(P, vocab, g, t, m, prefix)

    for answer in (by_sample_names, by_sample_logits):  # outside the checker both give the reference names
        g = torch.Generator().manual_seed(0)
        assert [answer(basics.SAMPLE_P, basics.SAMPLE_VOCAB, g, 2.0, basics.SAMPLE_MAX_LEN)
                for _ in range(basics.SAMPLE_NAMES)] == basics._reference_names(2.0)
    assert_wrong(basics.check_sample_name(by_sample_names), "write it yourself",
                 "text.sample_names, which does the exercise for you")
    assert_wrong(basics.check_sample_name(by_apply_temperature), "write it yourself", "text.apply_temperature")
    assert_wrong(basics.check_sample_name(by_sample_logits), "write it yourself", "text.sample_logits")
    assert_wrong(basics.check_sample_name(hidden), "write it yourself", "text.sample_names")
    assert [getattr(owner, attr) for owner, attr in basics.SAMPLE_SHORTCUTS] == originals


def test_trigram_nll_refuses_the_package_ngram():
    words, val = basics.TRIGRAM_TRAIN, basics.TRIGRAM_VAL
    vocab = text.build_vocab(words + val, boundary=".")
    by_package = lambda tr, va, vocab, alpha: text.ngram_nll(tr, va, vocab, 3, alpha)  # noqa: E731
    assert by_package(words, val, vocab, 0.5) == pytest.approx(basics.trigram_reference(words, val, vocab, 0.5))
    assert_wrong(basics.check_trigram_nll(by_package), "write it yourself",
                 "text.ngram_nll, which does the exercise for you")
    assert text.ngram_nll is basics.TRIGRAM_SHORTCUTS[0][0].ngram_nll and text.ngram_nll(words, val, vocab, 3, 0.5) > 0


def test_pca_interpolation_refuses_the_package_walk():
    from course_utils import density

    def by_package(a, b, mean, comp, k, steps):
        return density.PCA(mean, comp, torch.ones(comp.shape[1])).interpolate(a, b, k, steps)

    def by_encode_decode(a, b, mean, comp, k, steps):
        pca = density.PCA(mean, comp, torch.ones(comp.shape[1]))
        z = pca.encode(torch.stack([a, b]), k)
        t = torch.linspace(0, 1, steps)[:, None]
        return pca.decode((1 - t) * z[0] + t * z[1])

    x, pca = basics._pca_fixture()
    for answer in (by_package, by_encode_decode):  # both right outside the checker
        assert torch.allclose(answer(x[0], x[1], pca.mean, pca.components, 2, 5), pca.interpolate(x[0], x[1], 2, 5),
                              atol=1e-5)
    assert_wrong(basics.check_pca_interpolation(by_package), "write it yourself",
                 "density.PCA.interpolate, which does the exercise for you")
    assert_wrong(basics.check_pca_interpolation(by_encode_decode), "write it yourself", "density.PCA.encode")
    assert torch.allclose(pca.interpolate(x[0], x[1], 2, 5), interpolate(x[0], x[1], pca.mean, pca.components, 2, 5),
                          atol=1e-5)  # restored
