"""The exercise checkers of notebook 01 (generative modelling basics)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from course_utils import density, text
from course_utils.exercises import Wrong, as_number, as_tensor, call, checker, close

GMM_TEST_WEIGHTS = torch.tensor([0.2, 0.5, 0.3])
GMM_TEST_MEANS = torch.tensor([[-6.0, 0.0], [0.0, 3.0], [6.0, 0.0]])
GMM_TEST_STDS = torch.tensor([[0.5, 0.8], [0.3, 0.4], [0.6, 0.5]])


@checker
def check_gmm_sampler(sample_fn: Callable[..., torch.Tensor]) -> str:
    """``sample_fn(weights [K], means [K, d], stds [K, d], n, generator)``: ``[n, d]`` points of a diagonal mixture."""
    w, mu, sd = GMM_TEST_WEIGHTS, GMM_TEST_MEANS, GMM_TEST_STDS
    n = 20_000
    out = call(sample_fn, "your sampler", w.clone(), mu.clone(), sd.clone(), n, torch.Generator().manual_seed(0))
    x = as_tensor(out, "the samples", shape=(n, 2))
    again = call(sample_fn, "your sampler", w.clone(), mu.clone(), sd.clone(), n, torch.Generator().manual_seed(0))
    if not isinstance(again, torch.Tensor) or not torch.equal(again.detach().cpu(), x):
        raise Wrong("two calls with generators seeded alike gave different samples: pass generator=generator "
                    "to every random call (torch.multinomial and torch.randn)")
    k = torch.cdist(x, mu).argmin(1)  # the components are far apart: the nearest mean is the one that drew
    frac = torch.bincount(k, minlength=3).float() / n
    if frac.max() > 0.99:
        raise Wrong("all the samples come from one component: pick a component for every sample, "
                    "k = torch.multinomial(weights, n, replacement=True, generator=generator)")
    if (frac - 1 / 3).abs().max() < 0.02:
        raise Wrong("the components were picked about equally often, but their weights are 0.2, 0.5 and 0.3: "
                    "pass the weights to torch.multinomial(weights, n, replacement=True)")
    if (frac - w).abs().max() > 0.02:
        got = ", ".join(f"{f:.2f}" for f in frac.tolist())
        raise Wrong(f"the components were picked with frequencies {got}, but the weights are 0.20, 0.50, 0.30: "
                    "draw k = torch.multinomial(weights, n, replacement=True) and use means[k], stds[k]")
    centres = torch.stack([x[k == j].mean(0) for j in range(3)])
    if (centres - mu).abs().max() > 0.1:
        raise Wrong("each component's points are not centred on its mean: use x = means[k] + stds[k] * eps")
    spread = torch.stack([x[k == j].std(0) for j in range(3)])
    if spread.max() < 1e-3:
        raise Wrong("the samples sit exactly on the means: add the noise, x = means[k] + stds[k] * eps "
                    "with eps = torch.randn(n, d, generator=generator)")
    if ((spread - sd**2).abs() / sd**2).max() < 0.1:
        raise Wrong("the spread of each component is its variance, not its standard deviation: "
                    "multiply eps by stds[k], not stds[k] ** 2")
    if ((spread - sd).abs() / sd).max() > 0.1:
        raise Wrong("the spread of each component does not match its standard deviations: "
                    "use x = means[k] + stds[k] * eps, with eps from torch.randn (a standard normal)")
    return "pick a component with the weights, then draw from its Gaussian"


def _row_name(vocab: text.Vocab | None, i: int) -> str:
    return f"row {i} ({vocab.itos[i]!r})" if vocab is not None and i < len(vocab) else f"row {i}"


@checker
def check_bigram_probs(
    probs: torch.Tensor, counts: torch.Tensor, alpha: float = 1.0, vocab: text.Vocab | None = None,
) -> str:
    """``probs[i, j]``: the probability that ``j`` follows ``i``, from ``counts`` with add-``alpha`` smoothing."""
    counts = counts.detach().cpu().float()
    p = as_tensor(probs, "your probabilities", shape=tuple(counts.shape))
    if (p < 0).any():
        raise Wrong("some probabilities are negative")
    rows, cols = p.sum(1), p.sum(0)
    if not torch.allclose(rows, torch.ones_like(rows), atol=1e-4):
        if torch.allclose(cols, torch.ones_like(cols), atol=1e-4):
            raise Wrong("your probabilities sum to 1 along dim 0 (down each column), not along dim 1: "
                        "row i is p(next | current = i), so divide by counts.sum(dim=1, keepdim=True)")
        if close(p.sum().item(), 1.0):
            raise Wrong("your whole table sums to 1, but each row should: divide by the row sums, "
                        ".sum(dim=1, keepdim=True), not by the grand total")
        i = int((rows - 1).abs().argmax())
        raise Wrong(f"your probabilities do not sum to 1 along dim 1 ({_row_name(vocab, i)} sums to "
                    f"{rows[i].item():.4f}): divide each row by its sum, .sum(dim=1, keepdim=True)")
    expected = text.counts_to_probs(counts, alpha)
    if close(p, expected):
        return f"each row is a distribution over the next symbol, smoothed with alpha = {alpha:g}"
    if alpha > 0 and close(p, text.counts_to_probs(counts, 0.0)):
        raise Wrong(f"these are the unsmoothed probabilities: add alpha = {alpha:g} to every count before "
                    "normalising, so that no pair gets probability 0")
    for other in (0.5, 1.0, 2.0, 0.1, 0.01):
        if other != alpha and close(p, text.counts_to_probs(counts, other)):
            raise Wrong(f"you smoothed with alpha = {other:g}; the exercise asks for alpha = {alpha:g}")
    i = int((p - expected).abs().max(1).values.argmax())
    raise Wrong(f"each row sums to 1, but the values differ from (counts + alpha) / row sum; "
                f"the largest difference is in {_row_name(vocab, i)}")


@checker
def check_nll_per_char(value: Any, probs: torch.Tensor, words: Sequence[str], vocab: text.Vocab) -> str:
    """``value``: the mean negative log-likelihood of ``words`` under the bigram table ``probs``, nats/char."""
    v = as_number(value, "your NLL")
    expected = text.nll_per_char(probs, words, vocab)
    if close(v, expected):
        return f"{v:.4f} nats per character, counting the end token '.' of every word"
    if close(v, -expected):
        raise Wrong("your value is negative: that is the mean log-likelihood; the NLL is its negative, -log p")
    if close(v, expected / math.log(2)):
        raise Wrong("that is in bits (log2); use the natural logarithm, torch.log, for nats")
    xs, ys = text.bigram_pairs(words, vocab)
    logp = probs.detach().float().cpu()[xs, ys].log()
    if close(v, float(-logp.sum())):
        raise Wrong(f"that is the total over all {len(xs)} predictions; divide by their number for the mean")
    not_end = ys != 0
    if close(v, float(-logp[not_end].mean())):
        raise Wrong("you left out the end token: a name of L characters makes L + 1 predictions, "
                    "the last one being '.' (the name ends)")
    per_word, start = [], 0
    for word in words:
        per_word.append(-logp[start:start + len(word) + 1].mean())
        start += len(word) + 1
    if per_word and close(v, float(torch.stack(per_word).mean())):
        raise Wrong("you averaged within each name first, then over names; average over all predictions "
                    "at once, so that every character counts the same")
    raise Wrong(f"expected a positive number near {expected:.2f} for this table: the mean of -log P[current, next] "
                "over every pair, with '.' before and after each name")


@checker
def check_pca_reconstruction(reconstruct_fn: Callable[..., torch.Tensor]) -> str:
    """``reconstruct_fn(x [N, D], mean [D], components [D, D], k)`` encodes to ``k`` numbers and decodes back."""
    g = torch.Generator().manual_seed(0)
    n, d = 200, 6
    x = torch.randn(n, 3, generator=g) @ torch.randn(3, d, generator=g) + 0.1 * torch.randn(n, d, generator=g)
    x = x + torch.linspace(1.0, 3.0, d)  # a mean far from zero, so forgetting it shows
    pca = density.PCA.fit(x)
    k = 2
    out = call(reconstruct_fn, "your function", x.clone(), pca.mean.clone(), pca.components.clone(), k)
    rec = as_tensor(out, "the reconstruction", shape=(n, d))
    expected = pca.reconstruct(x, k)
    if close(rec, expected, 1e-3):
        full = as_tensor(call(reconstruct_fn, "your function", x.clone(), pca.mean, pca.components, d),
                         "the reconstruction with k = D", shape=(n, d))
        if not close(full, x, 1e-3):
            raise Wrong("with k = D (every component) the reconstruction should give x back exactly")
        return "x_hat = mean + ((x - mean) @ V_k) @ V_k.T, with V_k the first k columns"
    centred = x - pca.mean
    v_k = pca.components[:, :k]
    if close(rec, centred @ v_k @ v_k.T, 1e-3):
        raise Wrong("you forgot to add the mean back after decoding: x_hat = z @ V_k.T + mean")
    if close(rec, x @ v_k @ v_k.T + pca.mean, 1e-3) or close(rec, x @ v_k @ v_k.T, 1e-3):
        raise Wrong("subtract the mean before projecting: z = (x - mean) @ V_k")
    rows = pca.components[:k]
    if close(rec, centred @ rows.T @ rows + pca.mean, 1e-3):
        raise Wrong("you took the first k rows of components; the principal directions are its columns, "
                    "components[:, :k]")
    last = pca.components[:, -k:]
    if close(rec, centred @ last @ last.T + pca.mean, 1e-3):
        raise Wrong("you used the last k columns, the directions of *least* variance; the columns are sorted "
                    "by decreasing variance, so take components[:, :k]")
    raise Wrong("the reconstruction differs from mean + ((x - mean) @ V_k) @ V_k.T with V_k = components[:, :k]")


def _index_tensor(value: Any, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise Wrong(f"{what} should be a torch.Tensor of indices, but it is a {type(value).__name__}")
    if value.is_floating_point() or value.dtype == torch.bool or value.dim() != 1:
        raise Wrong(f"{what} should be a 1-D tensor of integer indices; it has dtype {value.dtype} and "
                    f"shape {tuple(value.shape)} (a boolean mask? use torch.nonzero(mask)[:, 0])")
    return value.detach().cpu().long()


@checker
def check_stratified_split(
    train_idx: torch.Tensor, val_idx: torch.Tensor, labels: torch.Tensor, val_fraction: float = 0.1,
) -> str:
    """``train_idx``, ``val_idx``: each index of ``labels`` once; a random ``val_fraction`` of each class in val."""
    labels = labels.detach().cpu().long()
    tr, va = _index_tensor(train_idx, "train_idx"), _index_tensor(val_idx, "val_idx")
    n = len(labels)
    for what, idx in (("train_idx", tr), ("val_idx", va)):
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise Wrong(f"{what} holds indices outside 0..{n - 1}")
    shared = torch.isin(va, tr)
    if shared.any():
        raise Wrong(f"{int(shared.sum())} indices are in both train_idx and val_idx: an image must be on one side "
                    "only, or the validation score measures memory instead of generalisation")
    seen = torch.bincount(torch.cat([tr, va]), minlength=n)
    if (seen != 1).any():
        raise Wrong(f"every index 0..{n - 1} should appear exactly once in train_idx or val_idx; "
                    f"{int((seen == 0).sum())} are missing and {int((seen > 1).sum())} appear more than once")
    classes = int(labels.max()) + 1
    per_class = torch.bincount(labels, minlength=classes)
    in_val = torch.bincount(labels[va], minlength=classes)
    wanted = (per_class.double() * val_fraction).round().long()
    if (in_val - wanted).abs().max() > 1:
        shares = in_val.double() / per_class.clamp_min(1)
        raise Wrong(f"the share of each class in val ranges from {shares.min():.1%} to {shares.max():.1%}; "
                    f"it should be {val_fraction:.0%} for every class: split each class separately "
                    "(torch.nonzero(labels == c)) and put val_fraction of it in val")
    first = all(
        set(va[labels[va] == c].tolist()) == set(torch.nonzero(labels == c)[: int(in_val[c]), 0].tolist())
        for c in range(classes) if in_val[c] > 0
    )
    if first:
        raise Wrong("val holds the first images of each class in file order: shuffle each class's indices "
                    "with a seeded generator (torch.randperm) before taking val_fraction of them")
    return f"{len(tr):,} train and {len(va):,} val indices, {val_fraction:.0%} of every class in val"
