"""The exercise checkers of notebook 01 (generative modelling basics)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from course_utils import density, text
from course_utils.exercises import Wrong, as_number, as_tensor, call, call_refusing, checker, close, not_done

# --- the package's one-liners: an exercise that asks for an algorithm refuses the functions that do it ---------------

SAMPLE_SHORTCUTS = ((text, "sample_names"), (text, "sample_logits"), (text, "logits_to_probs"),
                    (text, "apply_temperature"))
TRIGRAM_SHORTCUTS = ((text, "ngram_nll"),)
PCA_SHORTCUTS = ((density.PCA, "interpolate"), (density.PCA, "reconstruct"), (density.PCA, "encode"),
                 (density.PCA, "decode"))


def _label(owner: Any, attr: str) -> str:
    return f"{'text' if owner is text else 'density.PCA'}.{attr}"


def _refusing_call(shortcuts: Sequence[tuple[Any, str]], fn: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """:func:`course_utils.exercises.call_refusing` for ``(owner, attr)`` pairs: the hint says "write it yourself"."""
    return call_refusing([(owner, attr, _label(owner, attr)) for owner, attr in shortcuts], "write it yourself", fn,
                         what, *args, advice="the exercise asks for the steps, built from torch operations", **kwargs)


# --- exercise 2: sampling a name, with a temperature (section 3.6) -----------------------------------

SAMPLE_VOCAB = text.build_vocab("abcd", boundary=".")
# a small bigram table: the most likely step from '.' is 'a', and from 'a' it is '.', so always taking the most
# likely symbol ends at once ("a"); names end with probability 0.1 to 0.35 per step, so some reach max_len
SAMPLE_P = torch.tensor([[0.0, 0.4, 0.3, 0.2, 0.1],
                         [0.35, 0.1, 0.25, 0.2, 0.1],
                         [0.2, 0.3, 0.1, 0.25, 0.15],
                         [0.15, 0.2, 0.3, 0.1, 0.25],
                         [0.1, 0.15, 0.2, 0.3, 0.25]])
SAMPLE_MAX_LEN, SAMPLE_NAMES = 6, 40


def sample_reference(P: torch.Tensor, generator: torch.Generator, temperature: float, max_len: float,
                     start: int | None = None, weights: str = "log", prefix: str = "") -> str:
    """One name that begins with ``prefix``, drawn as the exercise asks, or with a common mistake (``start``: the
    row the first draw is made from, the prefix's last letter by default; ``weights``: how the row is reshaped)."""
    name = prefix
    current = (SAMPLE_VOCAB.stoi[prefix[-1]] if prefix else 0) if start is None else start
    while len(name) < max_len:
        row = P[current]
        if weights == "log":  # right: the log-probabilities divided by T
            probs = torch.softmax(row.log() / temperature, dim=0)
        elif weights == "times":  # log-probabilities multiplied by T
            probs = torch.softmax(row.log() * temperature, dim=0)
        else:  # "softmax of P / T": the probabilities used as if they were logits
            probs = torch.softmax(row / temperature, dim=0)
        current = int(torch.multinomial(probs, 1, generator=generator))
        if current == 0:
            break
        name += SAMPLE_VOCAB.itos[current]
    return name


def _names(sample_fn: Callable[..., Any], temperature: float, seed: int, prefix: str | None = None) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    extra = {} if prefix is None else {"prefix": prefix}  # None: the learner's default prefix, ""
    names = [_refusing_call(SAMPLE_SHORTCUTS, sample_fn, "your function", SAMPLE_P.clone(), SAMPLE_VOCAB, g,
                           temperature, SAMPLE_MAX_LEN, **extra) for _ in range(SAMPLE_NAMES)]
    for name in names:
        if not isinstance(name, str):
            raise Wrong(f"return the name as a string of letters; you return a {type(name).__name__}")
    return names


def _reference_names(temperature: float, seed: int = 0, **mistake: Any) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    max_len = mistake.pop("max_len", SAMPLE_MAX_LEN)
    return [sample_reference(SAMPLE_P, g, temperature, max_len, **mistake) for _ in range(SAMPLE_NAMES)]


# prefixes the checker completes: a bigram continues from the prefix's last letter only, so "ca" and "da" differ
# from "a" only in their first letter; "dd" starts in the row of 'd', whose first draw differs from the row of '.'
SAMPLE_PREFIXES = ("dd", "ca", "d")


def _greedy_name() -> str:
    """The name made by taking the most likely symbol at every step ('a': see SAMPLE_P)."""
    name, current = "", int(SAMPLE_P[0].argmax())
    while current != 0 and len(name) < SAMPLE_MAX_LEN:
        name += SAMPLE_VOCAB.itos[current]
        current = int(SAMPLE_P[current].argmax())
    return name


@checker(solution="sample_name")
def check_sample_name(sample_fn: Callable[..., Any]) -> str:
    """``sample_fn(P, vocab, generator, temperature, max_len, prefix="")``: one name from the bigram table ``P``."""
    names = _names(sample_fn, 1.0, seed=0)
    if any("." in name[:-1] for name in names):
        raise Wrong("a name goes on after '.' was drawn: the end token ends the name, so stop at the first '.'")
    if any(name.endswith(".") for name in names):
        raise Wrong("your names end with '.': the end token says the name is over, it is not part of the name")
    if any(len(name) > SAMPLE_MAX_LEN for name in names):
        raise Wrong(f"a name is longer than max_len = {SAMPLE_MAX_LEN}: stop when it has max_len characters")
    if len(set(names)) == 1 and names[0] != _greedy_name():
        raise Wrong(f"all {SAMPLE_NAMES} names are {names[0]!r}: each call repeats the same draws; draw with the "
                    "generator you are given (it moves on after every draw), not with one of your own")
    if all(len(name) == SAMPLE_MAX_LEN for name in names):
        raise Wrong(f"every name has max_len = {SAMPLE_MAX_LEN} letters: when '.' is drawn the name is over, so stop "
                    "there")
    if len(set(names)) == 1:
        raise Wrong(f"all {SAMPLE_NAMES} names are {names[0]!r}: taking the most likely symbol at every step (argmax) "
                    "is greedy decoding, not sampling; draw each symbol at random from its row")
    if names != _names(sample_fn, 1.0, seed=0):
        raise Wrong("two generators with the same seed gave different names: make every draw with the generator "
                    "you are given, so that a seed repeats a name")
    if names != _reference_names(1.0):
        for start in range(1, len(SAMPLE_VOCAB)):
            if names == _reference_names(1.0, start=start):
                raise Wrong(f"your names start from the row of {SAMPLE_VOCAB.itos[start]!r}: the first letter is "
                            "drawn from the row of '.', index 0 (the start token)")
        if names == _reference_names(1.0, weights="softmax"):
            raise Wrong("P holds probabilities, not logits: take their log before dividing by T and applying "
                        "the softmax")
        if names == _reference_names(1.0, max_len=math.inf):
            raise Wrong(f"stop when the name has max_len characters (the checker gives max_len = {SAMPLE_MAX_LEN})")
        raise Wrong("at T = 1 your names differ from a reference draw with the same seed: start in the row of '.', "
                    "make exactly one multinomial draw of one symbol per step from the current row (with the "
                    "generator), and move to the row of the symbol drawn")
    for temperature in (0.5, 2.0):
        names = _names(sample_fn, temperature, seed=0)
        if names == _reference_names(temperature):
            continue
        if names == _reference_names(1.0):
            raise Wrong(f"at T = {temperature} you draw the same names as at T = 1: dividing the probabilities by T "
                        "changes nothing once they are normalised; divide the log-probabilities by T instead")
        if names == _reference_names(temperature, weights="softmax"):
            raise Wrong("P holds probabilities, not logits: take their log before dividing by T and applying "
                        "the softmax")
        if names == _reference_names(temperature, weights="times"):
            raise Wrong("divide the log-probabilities by T, do not multiply: T < 1 must sharpen the row, "
                        "T > 1 flatten it")
        raise Wrong(f"right at T = 1 but not at T = {temperature}: before each draw, divide the row's "
                    "log-probabilities by T and renormalise with a softmax")
    for prefix in SAMPLE_PREFIXES:
        names = _names(sample_fn, 1.0, seed=0, prefix=prefix)
        if names == _reference_names(1.0, prefix=prefix):
            continue
        if names == _reference_names(1.0):
            raise Wrong("the prefix is ignored: the name must begin with it, and the first draw comes from the row "
                        "of its last letter")
        if not all(name.startswith(prefix) for name in names):
            raise Wrong(f"with prefix={prefix!r} some names do not start with it: return the prefix followed by the "
                        "letters you draw")
        if names == _reference_names(1.0, prefix=prefix, start=0):
            raise Wrong(f"with prefix={prefix!r} the first draw is made from the row of '.', as if the name were "
                        "starting: after a prefix, draw from the row of its last letter (a bigram remembers only "
                        "that one)")
        if names == _reference_names(1.0, prefix=prefix, start=SAMPLE_VOCAB.stoi[prefix[0]]):
            raise Wrong(f"with prefix={prefix!r} the first draw comes from the row of its first letter: a bigram "
                        "predicts from the last letter, prefix[-1]")
        if names == _reference_names(1.0, prefix=prefix, max_len=SAMPLE_MAX_LEN + len(prefix)):
            raise Wrong(f"max_len counts the whole name, the prefix's letters too: no name may be longer than "
                        f"max_len = {SAMPLE_MAX_LEN}")
        if any(len(name) > SAMPLE_MAX_LEN for name in names):
            raise Wrong(f"a name is longer than max_len = {SAMPLE_MAX_LEN}: max_len counts the prefix's letters too")
        raise Wrong(f"with prefix={prefix!r} your names differ from a reference draw with the same seed: start from "
                    "the prefix, draw the next letter from the row of its last letter, and go on as without a prefix")
    return ("the same names as a reference draw with the same seed at T = 0.5, 1 and 2, with and without a prefix: "
            "one draw per letter from the row of the last letter, stopped at '.' or at max_len letters")


# --- exercise 1: a trigram model (section 3.5) --------------------------------------------------------

TRIGRAM_TRAIN = ["emma", "ava", "anna", "eve", "ella", "mae", "amelia", "lena"]
TRIGRAM_VAL = ["ella", "nala", "eva", "ann"]


def trigram_reference(train: Sequence[str], val: Sequence[str], vocab: text.Vocab, alpha: float,
                      starts: int = 2, end: bool = True, total: bool = False, bits: bool = False,
                      denominator_alpha: bool = True) -> float:
    """The add-alpha trigram's held-out NLL, and the variants that common mistakes compute."""
    v, b = len(vocab), vocab.boundary
    counts = torch.zeros(v, v, v)
    pad = lambda w: vocab.encode(b * starts + w + (b if end else ""))  # noqa: E731
    for word in train:
        ids = pad(word)
        for i in range(2, len(ids)):
            counts[ids[i - 2], ids[i - 1], ids[i]] += 1
    denom = counts.sum(2, keepdim=True) + (alpha * v if denominator_alpha else alpha)
    probs = (counts + alpha) / denom
    logp = [probs[ids[i - 2], ids[i - 1], ids[i]].log() for w in val for ids in [pad(w)] for i in range(2, len(ids))]
    nll = -torch.stack(logp)
    value = nll.sum() if total else nll.mean()
    return float(value / math.log(2) if bits else value)


@checker(solution="trigram_nll")
def check_trigram_nll(nll_fn: Callable[..., Any]) -> str:
    """``nll_fn(train_words, val_words, vocab, alpha)``: held-out NLL per character of an add-alpha trigram model."""
    vocab = text.build_vocab(TRIGRAM_TRAIN + TRIGRAM_VAL, boundary=".")
    got = as_number(_refusing_call(TRIGRAM_SHORTCUTS, nll_fn, "your function", list(TRIGRAM_TRAIN), list(TRIGRAM_VAL),
                                  vocab, 0.5), "your NLL")
    expected = trigram_reference(TRIGRAM_TRAIN, TRIGRAM_VAL, vocab, 0.5)
    if close(got, expected):
        other = as_number(_refusing_call(TRIGRAM_SHORTCUTS, nll_fn, "your function", list(TRIGRAM_TRAIN),
                                        list(TRIGRAM_VAL), vocab, 0.1), "NLL")
        if not close(other, trigram_reference(TRIGRAM_TRAIN, TRIGRAM_VAL, vocab, 0.1)):
            raise Wrong("right for alpha = 0.5 but not for alpha = 0.1: use the alpha you are given")
        return f"{got:.4f} nats per character on the test words: two start tokens, every character and the end token"
    mistakes = [
        (dict(starts=1), "pad each word with two boundary tokens, '..' + word + '.': the first letter is "
                         "predicted from the context ('.', '.'), the second from ('.', first letter)"),
        (dict(end=False), "count the end token: a word of L letters makes L + 1 predictions, the last one '.'"),
        (dict(total=True), "that is the total over all predictions; divide by their number for the mean"),
        (dict(bits=True), "that is in bits (log2); use the natural logarithm for nats"),
        (dict(denominator_alpha=False), "each row must still sum to 1: add alpha to every count, so the "
                                        "denominator grows by alpha times the vocabulary size"),
    ]
    for variant, hint in mistakes:
        if close(got, trigram_reference(TRIGRAM_TRAIN, TRIGRAM_VAL, vocab, 0.5, **variant)):
            raise Wrong(hint)
    if close(got, -expected):
        raise Wrong("the NLL is positive: the mean of -log p")
    raise Wrong(f"expected about {expected:.3f} for the test words: count (a, b) -> c over '..' + word + '.', "
                "P = (N + alpha) / (row total + alpha V), then the mean of -log P over every held-out prediction")


# --- the prediction after exercise 1: smoothing or context? (section 3.5) ------------------------------------

PREDICTION_ALPHAS = (0.01, 0.1, 1.0)


def check_trigram_prediction(train_words: Sequence[str], val_words: Sequence[str], vocab: text.Vocab,
                             bigram_nll: float) -> str:
    """Check the answer to 01's "predict first" question without showing the scores: a second character of context
    (the add-alpha trigram's held-out NLL against the add-one bigram's, ``bigram_nll``) gains over 0.1 nats per
    character, and the choice of alpha among 0.01, 0.1 and 1 changes the trigram's by under a fifth of that gain.

    Not an exercise checker (the notebook runs it in Run All): it raises ``AssertionError`` when the answer does not
    hold, and returns a line that does not give the answer away.
    """
    if abs(text.ngram_nll(train_words, val_words, vocab, 2, 1.0) - bigram_nll) > 1e-4:  # n = 2: the add-one bigram
        raise AssertionError("bigram_nll is not the add-one bigram's held-out NLL on these words")
    trigram = [text.ngram_nll(train_words, val_words, vocab, 3, alpha) for alpha in PREDICTION_ALPHAS]
    gain, spread = bigram_nll - min(trigram), max(trigram) - min(trigram)  # context's gain, alpha's spread
    if not gain > 0.1:
        raise AssertionError(f"the trigram gains only {gain:.4f} nats per character over the bigram (expected > 0.1)")
    if not spread < 0.2 * gain:
        raise AssertionError(f"alpha changes the trigram's NLL by {spread:.4f}, not under a fifth of context's gain "
                             f"{gain:.4f}")
    return ("checked, scores hidden: your trigram_nll at alpha = 0.01, 0.1 and 1, beside the bigram's count_nll, "
            "shows the answer")


# --- exercise 4: what the bias learns when a penalty pulls W to 0 (section 6, optional) ------------------------

BIAS_V = 6
# the next symbols of the checker's pairs: far from uniform, and from the current symbols' own spread
BIAS_Y_PROBS = torch.tensor([0.05, 0.4, 0.25, 0.15, 0.1, 0.05])


def _same_row(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two biases give the same row, softmax(a) = softmax(b): equal up to a constant."""
    return close(torch.softmax(a.double(), 0), torch.softmax(b.double(), 0))


@checker(solution="best_bias")
def check_best_bias(bias_fn: Callable[..., Any]) -> str:
    """``bias_fn(x, y, V)``: the bias ``b`` (``[V]``) that minimises the cross-entropy of the logits ``b`` for ``y``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(BIAS_V, (400,), generator=g)
    y = torch.multinomial(BIAS_Y_PROBS, 400, replacement=True, generator=g)
    b = as_tensor(call(bias_fn, "your function", x, y, BIAS_V), "the bias", shape=(BIAS_V,))
    y_counts, x_counts = (torch.bincount(v, minlength=BIAS_V).double() for v in (y, x))
    y_freq, x_freq = y_counts / len(y), x_counts / len(x)
    if _same_row(b, y_freq.log()):
        return ("softmax(b) is the share of each symbol among the next symbols: with W = 0 every row is the unigram "
                "distribution, the shared row a bias is free to fit (a large alpha would make it uniform instead)")
    mistakes = [
        (torch.zeros(BIAS_V), "a constant bias gives the uniform row, the model with no bias; a free bias can fit "
                              "the targets better than that"),
        (y_freq, "softmax exponentiates b: the row is softmax(b), so b must be such that exp(b) is proportional to "
                 "the row you want"),
        (y_counts, "softmax exponentiates b: the row is softmax(b), so b must be such that exp(b) is proportional to "
                   "the row you want"),
        (-y_freq.log(), "the sign is the wrong way round: frequent next symbols need the larger logits"),
        (x_freq.log(), "these are the shares of the current symbols x: the loss scores the targets y, and with W = 0 "
                       "the current symbol no longer changes the prediction"),
        (x_freq, "with W = 0 the current symbol x no longer changes the prediction: think about the targets y"),
        ((y_counts + 1).log(), "no pseudo-counts: the cross-entropy on these pairs is lowest without smoothing"),
    ]
    for wrong, hint in mistakes:
        if _same_row(b, wrong):
            raise Wrong(hint)
    mean_nll = F.cross_entropy(b.double().expand(len(y), BIAS_V), y).item()
    best = F.cross_entropy(y_freq.log().expand(len(y), BIAS_V), y).item()
    raise Wrong(f"with your b the mean -log p of the checker's targets is {mean_nll:.4f} nats, and the best bias gets "
                f"{best:.4f}: which row makes the observed next symbols most probable?")


# --- exercise 3: interpolation in PCA space (section 4.1) ---------------------------------------------------


def _pca_fixture() -> tuple[torch.Tensor, density.PCA]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g) @ torch.randn(3, 6, generator=g) + 0.1 * torch.randn(200, 6, generator=g)
    x = x + torch.linspace(1.0, 3.0, 6)  # a mean far from zero, so forgetting it shows
    return x, density.PCA.fit(x)


@checker(solution="pca_interpolate")
def check_pca_interpolation(interp_fn: Callable[..., Any]) -> str:
    """``interp_fn(x_a, x_b, mean, components, k, steps)``: ``[steps, D]`` decoded points between two codes."""
    x, pca = _pca_fixture()
    k, steps = 2, 5
    out = _refusing_call(PCA_SHORTCUTS, interp_fn, "your function", x[0].clone(), x[1].clone(), pca.mean.clone(),
                        pca.components.clone(), k, steps)
    got = as_tensor(out, "the interpolation", shape=(steps, x.shape[1]))
    codes = pca.encode(x[:2], k)
    t = torch.linspace(0, 1, steps)[:, None]
    expected = pca.interpolate(x[0], x[1], k, steps)
    if close(got, expected, 1e-4):
        return "encode both, walk the straight line between the codes, decode every point"
    if close(got, (1 - t) * x[0] + t * x[1], 1e-4):
        raise Wrong("that is a cross-fade of the two inputs in pixel space; encode them to k numbers first, "
                    "interpolate the codes, then decode")
    v = pca.components[:, :k]
    if close(got, ((1 - t) * codes[0] + t * codes[1]) @ v.T, 1e-4):
        raise Wrong("add the mean back after decoding: x = z @ U_k.T + mean")
    if close(got[[0, -1]], expected[[-1, 0]], 1e-4):
        raise Wrong("the walk runs backwards: start at x_a (t = 0) and end at x_b (t = 1)")
    if not close(got[0], expected[0], 1e-4) or not close(got[-1], expected[-1], 1e-4):
        raise Wrong("the first and last rows should be the PCA reconstructions of x_a and x_b: use "
                    "t = torch.linspace(0, 1, steps), both ends included")
    raise Wrong("the points between the ends are off: z(t) = (1 - t) z_a + t z_b, then decode")


@checker(solution="walk_source")
def check_walk_source(source_fn: Callable[..., Any]) -> str:
    """``source_fn(x_a, x_b, t)``: ``[steps, D]`` images of x_a and x_b alone that PCA projects onto the walk."""
    x, pca = _pca_fixture()
    k, steps = 2, 5
    t = torch.linspace(0, 1, steps)[:, None]
    out = _refusing_call(PCA_SHORTCUTS, source_fn, "your function", x[0].clone(), x[1].clone(), t.clone())
    got = as_tensor(out, "your images", shape=(steps, x.shape[1]))
    blend = (1 - t) * x[0] + t * x[1]
    if close(got, blend, 1e-4):
        return ("frame t of the walk is pca.reconstruct((1 - t) * x_a + t * x_b, k): PCA's encoder and decoder are "
                "linear, so walking between two codes is fading the pixels and projecting, and the middle frame is "
                "the projection of a half-and-half blend (a double exposure)")
    if close(got, t * x[0] + (1 - t) * x[1], 1e-4):
        raise Wrong("your blend runs backwards: at t = 0 the walk is at x_a's reconstruction")
    if close(pca.reconstruct(got, k), pca.interpolate(x[0], x[1], k, steps), 1e-4):
        raise Wrong("PCA projects your images onto the walk, but the simplest image made from x_a and x_b alone "
                    "does too: what weights of x_a and x_b give frame t?")
    raise Wrong("PCA does not project your images onto the walk: the walk is a straight line between the codes; "
                "which straight line between the images projects onto it?")


# --- exercise 5: a stratified validation split (section 7.3, optional) ---------------------------------------


def _split_labels() -> torch.Tensor:
    """1,000 labels of 5 classes with uneven shares (50% down to 5%), in a random order."""
    shares = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05])
    return torch.multinomial(shares, 1000, replacement=True, generator=torch.Generator().manual_seed(0))


def _index_tensor(value: Any, what: str) -> torch.Tensor:
    not_done(value)
    if not isinstance(value, torch.Tensor):
        raise Wrong(f"{what} should be a torch.Tensor of indices, but it is a {type(value).__name__}")
    if value.is_floating_point() or value.dtype == torch.bool or value.dim() != 1:
        raise Wrong(f"{what} should be a 1-D tensor of integer indices; it has dtype {value.dtype} and "
                    f"shape {tuple(value.shape)} (a boolean mask? use torch.nonzero(mask)[:, 0])")
    return value.detach().cpu().long()


def _split(split_fn: Callable[..., Any], labels: torch.Tensor, val_fraction: float,
           seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    out = call(split_fn, "your function", labels.clone(), val_fraction, torch.Generator().manual_seed(seed))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong(f"return two tensors, (train_idx, val_idx); you return a {type(out).__name__}")
    return _index_tensor(out[0], "train_idx"), _index_tensor(out[1], "val_idx")


def _class_shares_wrong(tr: torch.Tensor, va: torch.Tensor, labels: torch.Tensor, val_fraction: float) -> str | None:
    """A hint if the split is not a partition with ``val_fraction`` of every class in val (None if it is)."""
    n = len(labels)
    for what, idx in (("train_idx", tr), ("val_idx", va)):
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            return f"{what} holds indices outside 0..{n - 1}"
    shared = torch.isin(va, tr)
    if shared.any():
        return (f"{int(shared.sum())} indices are in both train_idx and val_idx: an image must be on one side "
                "only, or the validation score measures memory instead of generalisation")
    seen = torch.bincount(torch.cat([tr, va]), minlength=n)
    if (seen != 1).any():
        return (f"every index 0..{n - 1} should appear exactly once in train_idx or val_idx; "
                f"{int((seen == 0).sum())} are missing and {int((seen > 1).sum())} appear more than once")
    per_class = torch.bincount(labels, minlength=int(labels.max()) + 1)
    in_val = torch.bincount(labels[va], minlength=len(per_class))
    if ((in_val - (per_class.double() * val_fraction).round().long()).abs() > 1).any():
        shares = in_val.double() / per_class.clamp_min(1)
        return (f"with val_fraction = {val_fraction}, the share of each class in val ranges from {shares.min():.1%} "
                f"to {shares.max():.1%}; it should be {val_fraction:.0%} for every class: split each class "
                "separately (torch.nonzero(labels == c)) and put val_fraction of it in val")
    return None


@checker(solution="stratified_split")
def check_stratified_split(split_fn: Callable[..., Any]) -> str:
    """``split_fn(labels, val_fraction, generator)`` -> ``(train_idx, val_idx)``: a random share of each class."""
    labels = _split_labels()
    tr, va = _split(split_fn, labels, 0.1, seed=0)
    if len(va) > len(tr) and not torch.isin(va, tr).any():
        raise Wrong("val_idx is the larger part: return (train_idx, val_idx) in that order, with val_fraction "
                    "of each class in val_idx")
    hint = _class_shares_wrong(tr, va, labels, 0.1)
    if hint:
        raise Wrong(hint)
    in_val = torch.bincount(labels[va], minlength=5)
    if all(set(va[labels[va] == c].tolist()) == set(torch.nonzero(labels == c)[: int(in_val[c]), 0].tolist())
           for c in range(5)):
        raise Wrong("val holds the first examples of each class in file order: shuffle each class's indices "
                    "with the generator (torch.randperm(n, generator=generator)) before taking val_fraction of them")
    if _class_shares_wrong(*_split(split_fn, labels, 0.25, seed=0), labels, 0.25):
        raise Wrong("right for val_fraction = 0.1 but not for 0.25: use the val_fraction you are given")
    again = _split(split_fn, labels, 0.1, seed=0)[1]
    if set(again.tolist()) != set(va.tolist()):
        raise Wrong("the same generator seed gave two different splits: draw every random number from the "
                    "generator you are given (torch.randperm(n, generator=generator)), so that a split can be repeated")
    if set(_split(split_fn, labels, 0.1, seed=1)[1].tolist()) == set(va.tolist()):
        raise Wrong("another generator seed gave the same split: shuffle with the generator you are given, "
                    "not with one of your own")
    return f"{len(tr):,} train and {len(va):,} val indices, 10% of every class in val, repeatable with the seed"
