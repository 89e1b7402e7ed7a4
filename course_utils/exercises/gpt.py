"""The exercise checkers of notebook 04 (transformers from scratch)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils import decoding, text
from course_utils.exercises import Wrong, as_tensor, call, checker, close

# --- exercise 1: a sliding-window causal mask ------------------------------------------------------


def local_causal_mask(size: int, window: int) -> torch.Tensor:
    """The reference: True where ``0 <= i - j < window``."""
    i = torch.arange(size)[:, None]
    j = torch.arange(size)[None, :]
    return (i - j >= 0) & (i - j < window)


def _bool_mask(value: Any, size: int) -> torch.Tensor:
    m = as_tensor(value, "your mask", shape=(size, size), floating=False)
    if m.dtype != torch.bool:
        if m.is_floating_point() and torch.isinf(m).any():
            raise Wrong("this is an additive mask (0 and -inf): return booleans, True where attention is allowed; "
                        "masked_fill(~mask, float('-inf')) turns them into the additive form later")
        if set(m.unique().tolist()) <= {0, 1}:
            raise Wrong(f"your mask has dtype {m.dtype}; return booleans (True = may attend), e.g. with a comparison "
                        "such as (i - j >= 0) & (i - j < window), or .bool()")
        raise Wrong(f"your mask has dtype {m.dtype} and values other than 0 and 1; return a boolean tensor")
    return m


@checker
def check_local_causal_mask(mask_fn: Callable[[int, int], torch.Tensor]) -> str:
    """``mask_fn(size, window)``: ``[size, size]`` booleans, True where ``0 <= i - j < window`` (query i, key j)."""
    size = 7
    for window in (3, 1, 7, 10):
        got = _bool_mask(call(mask_fn, "your function", size, window), size)
        want = local_causal_mask(size, window)
        if torch.equal(got, want):
            continue
        if torch.equal(got, want.T):
            raise Wrong("your mask is transposed: True above the diagonal lets position i look at later positions. "
                        "Row i is the query: allow keys j with j <= i")
        if torch.equal(got, local_causal_mask(size, size)) and window < size:
            raise Wrong(f"with window={window} every earlier position is allowed: limit each query to the last "
                        "`window` positions, itself included (i - j < window)")
        if torch.equal(got, local_causal_mask(size, window + 1)):
            raise Wrong(f"each query sees {window + 1} positions with window={window}: the window counts the position "
                        "itself, so use i - j < window, not <=")
        if torch.equal(got, want & ~torch.eye(size, dtype=torch.bool)):
            raise Wrong("the diagonal is False: a position must be able to attend to itself (i - j = 0 is allowed)")
        if window >= size and torch.equal(got, local_causal_mask(size, window - 1)):
            raise Wrong("with a window longer than the sequence the mask is the plain causal mask (torch.tril)")
        rows = [i for i in range(size) if not torch.equal(got[i], want[i])]
        raise Wrong(f"with size={size}, window={window}, rows {rows} differ from 0 <= i - j < window "
                    f"(row 0 should be {want[0].int().tolist()}, yours is {got[0].int().tolist()})")
    return "each position sees itself and the window - 1 positions before it; window >= size is the causal mask"


# --- exercise 2: one attention head ------------------------------------------------------------------


def attention_head(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor,
                   scale: float | None = None, masked: bool = True, renormalise: bool = True,
                   dim: int = -1) -> torch.Tensor:
    """The reference head (its variants make the common mistakes, for the hints)."""
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    T, hs = q.shape
    scores = q @ k.T / (math.sqrt(hs) if scale is None else scale)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    if masked and renormalise:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=dim)
    if masked and not renormalise:
        weights = weights * mask
    return weights @ v


@checker
def check_attention_head(head_fn: Callable[..., torch.Tensor]) -> str:
    """``head_fn(x [T, C], w_q, w_k, w_v [C, hs])``: one causal self-attention head, ``[T, hs]``."""
    g = torch.Generator().manual_seed(0)
    T, C, hs = 6, 8, 4
    x = torch.randn(T, C, generator=g)
    w_q, w_k, w_v = (torch.randn(C, hs, generator=g) for _ in range(3))
    out = call(head_fn, "your head", x.clone(), w_q.clone(), w_k.clone(), w_v.clone())
    if isinstance(out, torch.Tensor) and tuple(out.shape) == (T, T):
        raise Wrong(f"your head returns a [{T}, {T}] tensor: those are the attention weights; "
                    "return the weighted sum of the values, weights @ v, of shape [T, hs]")
    y = as_tensor(out, "your output", shape=(T, hs))
    if close(y, attention_head(x, w_q, w_k, w_v)):
        return "softmax(q k^T / sqrt(hs)) with the future masked, times v"
    variants = [
        (dict(scale=1.0), "you did not scale the scores: divide q @ k.T by sqrt(hs), the head size"),
        (dict(scale=math.sqrt(C)), f"you scaled by sqrt({C}), the embedding width; scale by sqrt(hs) = "
                                   f"sqrt({hs}), the size of q and k"),
        (dict(scale=float(hs)), "you divided by hs; divide by its square root, sqrt(hs): the dot product of two "
                                "unit-variance vectors of length hs has variance hs"),
        (dict(masked=False), "position 0 sees the future: mask the scores above the diagonal with -inf before the "
                             "softmax (scores.masked_fill(~mask, float('-inf')))"),
        (dict(renormalise=False), "you zeroed the future weights after the softmax, so each row no longer sums to 1: "
                                  "mask the scores with -inf before the softmax instead"),
        (dict(dim=0), "the softmax runs down the columns (dim=0); each query's weights over the keys form a row: "
                      "softmax(dim=-1)"),
    ]
    for kwargs, hint in variants:
        if close(y, attention_head(x, w_q, w_k, w_v, **kwargs)):
            raise Wrong(hint)
    raise Wrong("the output differs from softmax(mask(q @ k.T / sqrt(hs))) @ v with q = x @ w_q, k = x @ w_k, "
                "v = x @ w_v")


# --- exercise 3: top-p (nucleus) filtering ------------------------------------------------------------


def _top_p_variants(logits: torch.Tensor, p: float) -> dict[str, torch.Tensor]:
    """Common wrong answers, each paired with its hint below."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    cum = probs.cumsum(-1)
    drop_crossing = cum > p  # drops the token that crosses p
    out = {"crossing": logits.masked_fill(drop_crossing.scatter(-1, order, drop_crossing), float("-inf")),
           "unsorted": sorted_logits.masked_fill(cum - probs >= p, float("-inf"))}
    raw = sorted_logits.cumsum(-1)
    drop_raw = raw - sorted_logits >= p
    out["no softmax"] = logits.masked_fill(drop_raw.scatter(-1, order, drop_raw), float("-inf"))
    asc_logits, asc_order = torch.sort(logits, dim=-1)
    asc_p = asc_logits.softmax(-1)
    drop_asc = asc_p.cumsum(-1) - asc_p >= p
    out["ascending"] = logits.masked_fill(drop_asc.scatter(-1, asc_order, drop_asc), float("-inf"))
    return out


TOP_P_HINTS = {
    "crossing": "you dropped the token whose probability takes the total past p: keep it. Drop a token only "
                "when the tokens above it already hold p of the mass (cumsum - probs >= p), so the most likely "
                "token always stays",
    "unsorted": "the result is in sorted order: put the filtered values back in the original order (scatter "
                "with the sort's indices)",
    "no softmax": "you accumulated logits; accumulate probabilities: softmax the sorted logits, then cumsum",
    "ascending": "you kept the least likely tokens: sort in descending order (torch.sort(..., descending=True))",
}


def _same_support(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.equal(torch.isinf(a), torch.isinf(b)))


def _filtered(value: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """The learner's filtered logits (``-inf`` allowed), or :class:`Wrong` with a hint about type and shape."""
    as_tensor(torch.zeros(1) if isinstance(value, torch.Tensor) else value, "your filtered logits")  # stub, type
    if tuple(value.shape) != shape:
        raise Wrong(f"your output should have shape {shape}, but it has shape {tuple(value.shape)}")
    y = value.detach().cpu()
    if not y.is_floating_point() or torch.isnan(y).any():
        raise Wrong("your output should be float logits, with float('-inf') for the dropped tokens (no nan)")
    if not torch.isinf(y).any() and (y >= 0).all() and close(y.sum(-1), torch.ones(shape[0]), 1e-3):
        raise Wrong("return logits, not probabilities: keep the kept tokens' logits unchanged and set the others "
                    "to float('-inf') (the sampler applies the softmax)")
    return y


@checker
def check_top_p(top_p_fn: Callable[[torch.Tensor, float], torch.Tensor]) -> str:
    """``top_p_fn(logits [B, V], p)``: the logits with ``-inf`` outside each row's nucleus of mass ``p``."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 12, generator=g) * 2
    for p in (0.9, 0.5, 0.05):
        y = _filtered(call(top_p_fn, "your function", logits.clone(), p), tuple(logits.shape))
        want = text.filter_logits(logits, top_p=p)
        if _same_support(y, want):
            if not torch.equal(y[~torch.isinf(want)], logits[~torch.isinf(want)]):
                raise Wrong("the kept tokens' logits changed: leave them as they are, only set the dropped ones "
                            "to float('-inf')")
            continue
        if torch.isinf(y).all(dim=-1).any():
            raise Wrong(f"with p={p} a row has every token removed: the most likely token must always stay "
                        "(drop a token only when the tokens above it already hold p of the mass)")
        for name, variant in _top_p_variants(logits, p).items():
            if _same_support(y, variant):
                raise Wrong(TOP_P_HINTS[name])
        kept, want_kept = (~torch.isinf(y)).sum(-1).tolist(), (~torch.isinf(want)).sum(-1).tolist()
        raise Wrong(f"with p={p} you keep {kept} tokens per row; the nucleus has {want_kept}: sort the "
                    "probabilities in descending order and keep tokens until their total reaches p")
    return "the smallest set of most likely tokens whose probabilities reach p, in the original order"


# --- exercise 4: the repetition penalty -----------------------------------------------------------------


@checker
def check_repetition_penalty(penalty_fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> str:
    """``penalty_fn(logits [V], previous [T], penalty)``: the repetition penalty (CTRL's, with Hugging Face's
    treatment of negative logits) on every token in ``previous``."""
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.5, 0.0, -0.5, 3.0])
    previous = torch.tensor([0, 1, 1, 4, 6, 0, 0])  # tokens 0, 1, 4, 6; some more than once
    penalty = 1.5
    original = logits.clone()
    out = call(penalty_fn, "your function", logits, previous.clone(), penalty)
    if not torch.equal(logits, original):
        raise Wrong("your function changed the logits it was given (in place): work on a copy, e.g. logits.clone()")
    y = as_tensor(out, "your penalised logits", shape=tuple(logits.shape))
    want = decoding.apply_repetition_penalty(logits, previous, penalty)
    if close(y, want):
        return "positive logits of seen tokens divided by the penalty, negative ones multiplied: both less likely"
    seen = torch.zeros(8, dtype=torch.bool)
    seen[previous] = True
    divided = torch.where(seen, logits / penalty, logits)
    counts = torch.bincount(previous, minlength=8).float()
    if close(y, divided):
        raise Wrong("dividing a negative logit by the penalty brings it closer to 0, which makes the token MORE "
                    "likely: multiply negative logits by the penalty and divide positive ones")
    if close(y, torch.where(logits > 0, logits / penalty, logits * penalty)):
        raise Wrong("you penalised every token; penalise only the tokens that appear in `previous`")
    per_use = torch.where(logits > 0, logits / penalty**counts, logits * penalty**counts)
    if close(y, per_use):
        raise Wrong("you applied the penalty once per occurrence; the penalty applies once to each token that "
                    "has appeared, however often")
    if close(y, torch.where(seen, logits - math.log(penalty), logits)):
        raise Wrong("you subtracted log(penalty); divide positive logits by the penalty and multiply negative "
                    "ones (CTRL divides all of them; Hugging Face multiplies the negative ones)")
    raise Wrong("the result differs from the repetition penalty: for each token in previous, logit / penalty if "
                "the logit is positive, logit * penalty otherwise; other tokens unchanged")
