"""course_utils.exercises.gpt: notebook 04's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import math

import torch

from course_utils import decoding, text
from course_utils.exercises import NOT_DONE
from course_utils.exercises import gpt as ex
from tests.checks import assert_right, assert_wrong


def stub(*args):
    raise NotImplementedError


# --- exercise 1: the sliding-window causal mask ----------------------------------------------------


def test_local_causal_mask():
    def right(size, window):
        i, j = torch.arange(size)[:, None], torch.arange(size)[None, :]
        return (j <= i) & (i - j < window)

    assert_right(ex.check_local_causal_mask(right))
    assert_right(ex.check_local_causal_mask(lambda s, w: torch.ones(s, s, dtype=torch.bool).tril().triu(-(w - 1))))
    assert_wrong(ex.check_local_causal_mask(lambda s, w: right(s, w).T), "transposed")
    assert_wrong(ex.check_local_causal_mask(lambda s, w: torch.ones(s, s, dtype=torch.bool).tril()), "every earlier")
    assert_wrong(ex.check_local_causal_mask(lambda s, w: right(s, w + 1)), "counts the position itself")
    assert_wrong(ex.check_local_causal_mask(lambda s, w: right(s, w) & ~torch.eye(s, dtype=torch.bool)), "itself")
    assert_wrong(ex.check_local_causal_mask(lambda s, w: right(s, w).float()), "booleans")
    additive = lambda s, w: torch.zeros(s, s).masked_fill(~right(s, w), float("-inf"))  # noqa: E731
    assert_wrong(ex.check_local_causal_mask(additive), "additive mask")
    assert_wrong(ex.check_local_causal_mask(lambda s, w: right(s, 2)), "rows")


def test_local_causal_mask_bad_answers():
    assert_wrong(ex.check_local_causal_mask(stub), NOT_DONE)
    assert_wrong(ex.check_local_causal_mask(...), NOT_DONE)
    assert_wrong(ex.check_local_causal_mask(lambda s, w: torch.ones(3, 3, dtype=torch.bool)), "shape (7, 7)")
    assert_wrong(ex.check_local_causal_mask(lambda s: None), "raised TypeError")


# --- exercise 2: one attention head -------------------------------------------------------------------


def head(scale=None, mask=True, after=False, dim=-1, weights=False):
    def fn(x, w_q, w_k, w_v):
        q, k, v = x @ w_q, x @ w_k, x @ w_v
        s = q @ k.T / (math.sqrt(k.shape[-1]) if scale is None else scale(k.shape[-1], x.shape[-1]))
        causal = torch.ones(len(x), len(x), dtype=torch.bool).tril()
        if mask and not after:
            s = s.masked_fill(~causal, float("-inf"))
        w = s.softmax(dim)
        if mask and after:
            w = w * causal
        return w if weights else w @ v

    return fn


def test_attention_head():
    assert_right(ex.check_attention_head(head()))
    assert_wrong(ex.check_attention_head(head(scale=lambda hs, c: 1.0)), "did not scale")
    assert_wrong(ex.check_attention_head(head(scale=lambda hs, c: math.sqrt(c))), "embedding width")
    assert_wrong(ex.check_attention_head(head(scale=lambda hs, c: hs)), "square root")
    assert_wrong(ex.check_attention_head(head(mask=False)), "sees the future")
    assert_wrong(ex.check_attention_head(head(after=True)), "after the softmax")
    assert_wrong(ex.check_attention_head(head(dim=0)), "dim=0")
    assert_wrong(ex.check_attention_head(head(weights=True)), "attention weights")
    assert_wrong(ex.check_attention_head(lambda x, q, k, v: x @ v * 2), "differs")
    assert_wrong(ex.check_attention_head(stub), NOT_DONE)


# --- exercise 3: top-p ------------------------------------------------------------------------------------


def test_top_p():
    assert_right(ex.check_top_p(lambda logits, p: text.filter_logits(logits, top_p=p)))

    def by_hand(logits, p):
        s, order = torch.sort(logits, dim=-1, descending=True)
        probs = s.softmax(-1)
        drop = probs.cumsum(-1) - probs >= p
        return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))

    assert_right(ex.check_top_p(by_hand))
    for name, hint in ex.TOP_P_HINTS.items():
        assert_wrong(ex.check_top_p(lambda logits, p, name=name: ex._top_p_variants(logits, p)[name]),
                     hint.split(":")[0][:30])
    as_probs = lambda logits, p: text.filter_logits(logits, top_p=p).softmax(-1)  # noqa: E731
    assert_wrong(ex.check_top_p(as_probs), "not probabilities")
    everything = lambda logits, p: torch.full_like(logits, float("-inf"))  # noqa: E731
    assert_wrong(ex.check_top_p(everything), "most likely token must always stay")
    assert_wrong(ex.check_top_p(lambda logits, p: text.filter_logits(logits, top_k=3)), "nucleus has")
    assert_wrong(ex.check_top_p(lambda logits, p: logits[:2]), "shape")
    assert_wrong(ex.check_top_p(stub), NOT_DONE)


def test_top_p_variants_really_differ_from_the_answer():
    """Each wrong variant must differ from the right answer on the checker's inputs, or its hint is unreachable."""
    logits = torch.randn(4, 12, generator=torch.Generator().manual_seed(0)) * 2
    for name in ex.TOP_P_HINTS:
        differs = [not ex._same_support(ex._top_p_variants(logits, p)[name], text.filter_logits(logits, top_p=p))
                   for p in (0.9, 0.5, 0.05)]
        assert any(differs), name


# --- exercise 4: the repetition penalty ----------------------------------------------------------------------


def test_repetition_penalty():
    assert_right(ex.check_repetition_penalty(decoding.apply_repetition_penalty))

    def by_hand(logits, previous, penalty):
        out = logits.clone()
        seen = torch.unique(previous)
        out[seen] = torch.where(out[seen] > 0, out[seen] / penalty, out[seen] * penalty)
        return out

    assert_right(ex.check_repetition_penalty(by_hand))

    def divide_all(logits, previous, penalty):
        out = logits.clone()
        out[previous] = out[previous] / penalty
        return out

    assert_wrong(ex.check_repetition_penalty(divide_all), "MORE likely")
    everywhere = lambda lg, prev, pen: torch.where(lg > 0, lg / pen, lg * pen)  # noqa: E731
    assert_wrong(ex.check_repetition_penalty(everywhere), "penalised every token")

    def per_use(logits, previous, penalty):
        out = logits.clone()
        for t in previous.tolist():
            out[t] = out[t] / penalty if out[t] > 0 else out[t] * penalty
        return out

    assert_wrong(ex.check_repetition_penalty(per_use), "once per occurrence")

    def in_place(logits, previous, penalty):
        seen = torch.unique(previous)
        logits[seen] = torch.where(logits[seen] > 0, logits[seen] / penalty, logits[seen] * penalty)
        return logits

    assert_wrong(ex.check_repetition_penalty(in_place), "in place")
    assert_wrong(ex.check_repetition_penalty(lambda lg, prev, pen: lg), "differs from the repetition penalty")
    assert_wrong(ex.check_repetition_penalty(stub), NOT_DONE)
