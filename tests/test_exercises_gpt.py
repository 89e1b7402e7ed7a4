"""course_utils.exercises.gpt: notebook 05's checkers say right to a right answer, and hint at each wrong one."""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch
import torch.nn.functional as F

from course_utils import decoding, gpt, text
from course_utils.exercises import gpt as ex
from course_utils.solutions import gpt as sol
from tests.checks import assert_not_done, assert_right, assert_wrong

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest


def stub(*args):
    raise NotImplementedError


# --- exercise 1: the sliding-window causal mask ----------------------------------------------------


def test_local_causal_mask():
    def right(size, window):
        i, j = torch.arange(size)[:, None], torch.arange(size)[None, :]
        return (j <= i) & (i - j < window)

    assert_right(ex.check_local_causal_mask(sol.local_causal_mask))
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
    assert_not_done(ex.check_local_causal_mask(stub))
    assert_not_done(ex.check_local_causal_mask(...))
    assert_wrong(ex.check_local_causal_mask(lambda s, w: torch.ones(3, 3, dtype=torch.bool)), "shape (7, 7)")
    assert_wrong(ex.check_local_causal_mask(lambda s: None), "raised TypeError")


# --- exercise 2: multi-head attention with ALiBi -------------------------------------------------------------


def alibi(sign=-1.0, scale=None, bias_first=False, mask=True, absolute=False, dim=-1, weights=False, use_slopes=True,
          zero_after=False, split="channels", merge=True, first_slope=False, hard_heads=None):
    """A learner's multi-head ALiBi attention, written out, with one mistake chosen by the arguments."""

    def fn(x, w_q, w_k, w_v, slopes):
        T, C = x.shape
        h = hard_heads or len(slopes)
        hs = C // h
        heads = {"channels": lambda t: t.view(T, h, hs).transpose(0, 1), "rows": lambda t: t.reshape(h, T, hs),
                 "none": lambda t: t[None]}[split]
        q, k, v = heads(x @ w_q), heads(x @ w_k), heads(x @ w_v)
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        dist = (i - j).abs() if absolute else i - j
        m = slopes[:1] if split == "none" else slopes[:1].expand(h) if first_slope else slopes[:h]
        bias = sign * (m.view(-1, 1, 1) if use_slopes else 1.0) * dist
        div = math.sqrt(q.shape[-1]) if scale is None else scale(q.shape[-1], C)
        s = (q @ k.transpose(1, 2) + bias) / div if bias_first else q @ k.transpose(1, 2) / div + bias
        if mask:
            s = s.masked_fill(j > i, float("-inf"))
        w = s.softmax(dim)
        if zero_after:
            w = w * (j <= i)  # the future's weights removed after the softmax (section 2.4's warning)
        if weights:
            return w
        y = w @ v
        return y.transpose(0, 1).reshape(T, C) if merge else y

    return fn


def test_alibi_attention():
    assert_right(ex.check_alibi_attention(sol.alibi_attention))
    assert_right(ex.check_alibi_attention(alibi()))
    assert_wrong(ex.check_alibi_attention(alibi(use_slopes=False, sign=0.0)), "ignore the slopes")
    assert_wrong(ex.check_alibi_attention(alibi(first_slope=True)), "every head uses the first slope")
    assert_wrong(ex.check_alibi_attention(lambda x, q, k, v, m: alibi()(x, q, k, v, m.flip(0))), "reverse order")
    assert_wrong(ex.check_alibi_attention(alibi(split="none")), "one head of size C")
    assert_wrong(ex.check_alibi_attention(alibi(split="rows")), "mix positions")
    assert_wrong(ex.check_alibi_attention(alibi(merge=False)), "stacked")
    assert_wrong(ex.check_alibi_attention(alibi(hard_heads=2)), "4 heads of size 2")  # right only for 2 heads
    assert_wrong(ex.check_alibi_attention(alibi(sign=1.0)), "favours distant keys")
    assert_wrong(ex.check_alibi_attention(alibi(bias_first=True)), "before dividing by sqrt(hs)")
    assert_wrong(ex.check_alibi_attention(alibi(scale=lambda hs, c: 1.0)), "did not scale")
    assert_wrong(ex.check_alibi_attention(alibi(scale=lambda hs, c: math.sqrt(c))), "embedding width")
    assert_wrong(ex.check_alibi_attention(alibi(scale=lambda hs, c: hs)), "square root")
    assert_wrong(ex.check_alibi_attention(alibi(mask=False)), "the bias alone does not hide")
    assert_wrong(ex.check_alibi_attention(alibi(mask=False, zero_after=True)), "AFTER the softmax", "sum to 1")
    assert_wrong(ex.check_alibi_attention(alibi(mask=False, absolute=True, zero_after=True)), "AFTER the softmax")

    def renormalised(x, w_q, w_k, w_v, slopes):  # zeroed after the softmax, then renormalised: the same as before
        w = alibi(mask=False, zero_after=True, weights=True)(x, w_q, w_k, w_v, slopes)
        T, C, h = *x.shape, len(slopes)
        v = (x @ w_v).view(T, h, C // h).transpose(0, 1)
        return ((w / w.sum(-1, keepdim=True)) @ v).transpose(0, 1).reshape(T, C)

    assert_right(ex.check_alibi_attention(renormalised))
    assert_wrong(ex.check_alibi_attention(alibi(mask=False, absolute=True)), "|i - j|")
    assert_wrong(ex.check_alibi_attention(alibi(dim=-2)), "dim=0")  # down the columns of [h, T, T]
    assert_wrong(ex.check_alibi_attention(alibi(weights=True)), "attention weights")
    assert_wrong(ex.check_alibi_attention(alibi(use_slopes=False)), "differs from each head")  # slope 1 always
    assert_wrong(ex.check_alibi_attention(lambda x, q, k, v, m: 2 * alibi()(x, q, k, v, m)), "differs from each head")
    assert_wrong(ex.check_alibi_attention(lambda x, q, k, v: x @ v), "raised TypeError")  # no slopes argument
    assert_not_done(ex.check_alibi_attention(stub))


def test_alibi_attention_refuses_the_package_and_torch_attention():
    def fused(x, w_q, w_k, w_v, slopes):  # right, but PyTorch's kernel does the work
        T, C, h = *x.shape, len(slopes)
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        bias = (-slopes.view(h, 1, 1) * (i - j)).masked_fill(j > i, float("-inf"))
        q, k, v = ((x @ w).view(T, h, C // h).transpose(0, 1) for w in (w_q, w_k, w_v))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(0, 1).reshape(T, C)

    assert torch.allclose(fused(*_alibi_inputs()), sol.alibi_attention(*_alibi_inputs()), atol=1e-5)
    original = F.scaled_dot_product_attention
    assert_wrong(ex.check_alibi_attention(fused), "write the attention yourself", "F.scaled_dot_product_attention")
    assert F.scaled_dot_product_attention is original  # restored

    def package(x, w_q, w_k, w_v, slopes):
        T, C, h = *x.shape, len(slopes)
        q, k, v = ((x @ w).view(T, h, C // h).transpose(0, 1) for w in (w_q, w_k, w_v))
        return gpt.attention(q, k, v, gpt.causal_mask(T))[0].transpose(0, 1).reshape(T, C)

    assert_wrong(ex.check_alibi_attention(package), "write the attention yourself", "gpt.attention")


def _alibi_inputs():
    g = torch.Generator().manual_seed(1)
    slopes = torch.tensor([0.75, 0.25])
    return torch.randn(5, 8, generator=g), *(torch.randn(8, 8, generator=g) for _ in range(3)), slopes


def test_alibi_with_one_head_is_the_single_head_formula():
    x, w_q, w_k, w_v, _ = _alibi_inputs()
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    i, j = torch.arange(5)[:, None], torch.arange(5)[None, :]
    scores = (q @ k.T / math.sqrt(8) - 0.5 * (i - j)).masked_fill(j > i, float("-inf"))
    assert torch.allclose(sol.alibi_attention(x, w_q, w_k, w_v, torch.tensor([0.5])), scores.softmax(-1) @ v, atol=1e-6)


def test_alibi_variants_really_differ_from_the_answer():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 8, generator=g)
    w = [torch.randn(8, 8, generator=g) * 0.5 for _ in range(3)]
    slopes = torch.tensor(ex.ALIBI_RUNS[0])
    for kwargs, hint in ex.ALIBI_VARIANTS:
        wrong, right = ex._alibi(x, *w, **{"slopes": slopes, **kwargs}), ex._alibi(x, *w, slopes)
        assert wrong.shape != right.shape or not torch.allclose(wrong, right, atol=1e-3), hint


# --- exercise 3: the original transformer's post-norm block -----------------------------------------------


class Attention(torch.nn.Module):  # notebook 05's written-out attention (section 2.7)
    def __init__(self, C, h):
        super().__init__()
        self.h = h
        self.c_attn = torch.nn.Linear(C, 3 * C, bias=False)
        self.c_proj = torch.nn.Linear(C, C, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in self.c_attn(x).split(C, dim=-1))
        y, _ = gpt.attention(q, k, v, gpt.causal_mask(T))
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(torch.nn.Module):  # notebook 05's written-out MLP
    def __init__(self, C):
        super().__init__()
        self.c_fc, self.c_proj = torch.nn.Linear(C, 4 * C, bias=False), torch.nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(torch.nn.Module):  # notebook 05's block, with the package's parameter names
    def __init__(self, C, h):
        super().__init__()
        self.ln_1, self.attn = torch.nn.LayerNorm(C, bias=False), Attention(C, h)
        self.ln_2, self.mlp = torch.nn.LayerNorm(C, bias=False), MLP(C)


def test_post_norm_forward():
    assert_right(ex.check_post_norm_forward(sol.post_norm_forward))

    def in_steps(block, x):
        attended = block.attn(x)
        x = block.ln_1(attended + x)
        y = x + block.mlp(x)
        return block.ln_2(y)

    assert_right(ex.check_post_norm_forward(in_steps))
    for name, hint in ex.BLOCK_HINTS.items():
        assert_wrong(ex.check_post_norm_forward(lambda b, x, name=name: ex._block_variants(b, x)[name]), hint[:40])
    assert_wrong(ex.check_post_norm_forward(lambda b, x: x), "differs from the post-norm block")
    assert_wrong(ex.check_post_norm_forward(lambda b, x: sol.post_norm_forward(b, x)[:, -1]), "shape")
    assert_not_done(ex.check_post_norm_forward(stub))


def test_the_package_s_forward_is_named_pre_norm():
    """Calling the block itself (gpt.Block.forward, GPT-2's order) gets the pre-norm hint, not a generic one."""
    assert_wrong(ex.check_post_norm_forward(lambda b, x: b(x)), "pre-norm block of section 2.7")
    assert_wrong(ex.check_post_norm_forward(gpt.Block.forward), "pre-norm block of section 2.7")
    for name, hint in ex.BLOCK_HINTS.items():  # each hint points to the fix without writing its line
        assert not re.search(r"ln_[12]\(\w+ \+", hint), name


def test_the_solution_on_the_notebook_s_written_out_block():
    """The notebook's block (its written-out attention and MLP) with gpt.Block's weights (load_state_dict, as
    notebook 05 does for the whole GPT): the solution gives the post-norm output of gpt.Block's layers."""
    reference = ex._reference_block()
    mine = Block(ex.BLOCK_C, ex.BLOCK_H)
    mine.load_state_dict(reference.state_dict())  # strict: the same names and shapes
    x = torch.randn(2, 6, ex.BLOCK_C, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        h = reference.ln_1(x + reference.attn(x))
        want = reference.ln_2(h + reference.mlp(h))
        assert torch.allclose(sol.post_norm_forward(mine, x), want, atol=1e-5)
        assert not torch.allclose(want, reference(x), atol=1e-2)  # the package's block is pre-norm: another output


def test_block_variants_differ_from_the_answer_and_from_each_other():
    """On the checker's block and input, every mistake changes the output well past the checker's tolerance,
    and no two mistakes give the same output: else a hint is unreachable, or names the wrong mistake."""
    block = ex._reference_block()
    x = 2 * torch.randn(2, 6, ex.BLOCK_C, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs = {"answer": ex._post_norm(block, x), **ex._block_variants(block, x)}
    assert set(ex.BLOCK_HINTS) == set(outputs) - {"answer"}
    for a, b in itertools.combinations(outputs, 2):
        assert (outputs[a] - outputs[b]).abs().max() > 0.05, (a, b)


# --- exercise 4: the sampling loop ----------------------------------------------------------------------


def sampler(crop=True, crop_first=False, temp="divide", largest=True, top_k_on=True, argmax=False, feed=True,
            position=-1, seeded=True, only_new=False, squeeze=False):
    """A learner's sampling loop (nanoGPT's style), with one mistake chosen by the arguments."""

    def fn(model, idx, steps, temperature, top_k, generator):
        out, block = idx, model.config.block_size
        for _ in range(steps):
            seq = out if feed else idx
            if crop:
                seq = seq[:, :block] if crop_first else seq[:, -block:]
            logits, _ = model(seq)
            logits = logits[:, position, :]
            if temp == "divide":
                logits = logits / temperature
            elif temp == "multiply":
                logits = logits * temperature
            if top_k_on:
                v, _ = torch.topk(logits, top_k, largest=largest)
                drop = logits < v[:, [-1]] if largest else logits > v[:, [-1]]
                logits = logits.masked_fill(drop, -float("inf"))
            probs = F.softmax(logits, dim=-1)
            if temp == "after":
                probs = probs / temperature
            if argmax:
                nxt = probs.argmax(dim=-1, keepdim=True)
            else:
                nxt = torch.multinomial(probs, num_samples=1, generator=generator if seeded else None)
            out = torch.cat([out, nxt], dim=1)
        out = out[:, idx.shape[1]:] if only_new else out
        return out[0] if squeeze else out

    return fn


def test_sample_tokens():
    assert_right(ex.check_sample_tokens(sol.sample_tokens))
    assert_right(ex.check_sample_tokens(sampler()))
    assert_wrong(ex.check_sample_tokens(sampler(crop=False)), "grew past block_size")
    assert_wrong(ex.check_sample_tokens(sampler(crop_first=True)), "FIRST block_size tokens")
    assert_wrong(ex.check_sample_tokens(sampler(temp="after")), "dividing the probabilities after the softmax")
    assert_wrong(ex.check_sample_tokens(sampler(temp="none")), "changes nothing")
    assert_wrong(ex.check_sample_tokens(sampler(temp="multiply")), "multiplied the logits")
    assert_wrong(ex.check_sample_tokens(sampler(largest=False)), "LEAST likely")
    assert_wrong(ex.check_sample_tokens(sampler(top_k_on=False)), "no top-k")
    assert_wrong(ex.check_sample_tokens(sampler(argmax=True)), "greedy decoding")
    assert_wrong(ex.check_sample_tokens(sampler(feed=False)), "feed the drawn token back")
    assert_wrong(ex.check_sample_tokens(sampler(position=0)), "FIRST position")
    assert_wrong(ex.check_sample_tokens(sampler(seeded=False)), "pass it to the draw")
    assert_wrong(ex.check_sample_tokens(sampler(only_new=True)), f"only the {ex.SAMPLE_RUNS[0][1]} new tokens")
    assert_wrong(ex.check_sample_tokens(sampler(squeeze=True)), "keep the batch dimension")
    assert_wrong(ex.check_sample_tokens(lambda m, idx, n, t, k, g: sampler()(m, idx, 1, t, k, g)), "one new token")
    assert_wrong(ex.check_sample_tokens(lambda m, idx, n, t, k, g: sampler()(m, idx, n, t, k, g).float()), "dtype")
    assert_wrong(ex.check_sample_tokens(lambda m, idx, n, t, k, g: sampler()(m, idx.flip(1), n, t, k, g)),
                 "are not the prompt")
    assert_wrong(ex.check_sample_tokens(lambda m, idx, n, t, k, g: sampler()(m, idx, n, t, k + 1, g)), "k + 1")
    assert_wrong(ex.check_sample_tokens(lambda m, idx, n, t, k, g: sampler()(m, idx, n, t, k - 1, g)), "k - 1")
    assert_wrong(ex.check_sample_tokens(lambda m, idx, n, t, k, g: sampler()(m, idx, n, t * t, k, g)),
                 "differs from gpt.generate's")
    assert_not_done(ex.check_sample_tokens(stub))


def test_sample_tokens_refuses_the_package_samplers():
    """The package's samplers give the right tokens: the checker refuses them, and restores them afterwards."""
    originals = [gpt.generate, text.sample_logits, text.logits_to_probs, text.filter_logits, decoding.sample]
    by_generate = lambda m, idx, n, t, k, g: gpt.generate(m, idx, n, t, k, generator=g)  # noqa: E731
    assert_wrong(ex.check_sample_tokens(by_generate), "write the loop yourself", "gpt.generate")

    def by_sample_logits(model, idx, steps, temperature, top_k, generator):
        for _ in range(steps):
            logits, _ = model(idx[:, -model.config.block_size:])
            nxt = text.sample_logits(logits[:, -1], temperature, top_k, generator=generator)
            idx = torch.cat([idx, nxt[:, None]], dim=1)
        return idx

    def by_logits_to_probs(model, idx, steps, temperature, top_k, generator):
        for _ in range(steps):
            logits, _ = model(idx[:, -model.config.block_size:])
            probs = text.logits_to_probs(logits[:, -1], temperature, top_k)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], dim=1)
        return idx

    def by_decoding(model, idx, steps, temperature, top_k, generator):
        return decoding.sample(model, idx[0], steps, temperature=temperature, top_k=top_k, generator=generator)[None]

    def hidden(model, idx, steps, temperature, top_k, generator):  # catches the refusal, then answers anyway
        try:
            return by_generate(model, idx, steps, temperature, top_k, generator)
        except Exception:
            return sol.sample_tokens(model, idx, steps, temperature, top_k, generator)

    model, prompt = ex._tiny_gpt(), torch.tensor([[2, 7, 1]])
    with torch.no_grad():  # outside the checker these loops give gpt.generate's tokens: only the refusal catches them
        want = gpt.generate(model, prompt, 12, 2.5, 4, generator=torch.Generator().manual_seed(19))
        for loop in (by_sample_logits, by_logits_to_probs, by_decoding):
            assert torch.equal(loop(model, prompt, 12, 2.5, 4, torch.Generator().manual_seed(19)), want), loop
    assert_wrong(ex.check_sample_tokens(by_sample_logits), "write the loop yourself", "text.sample_logits")
    assert_wrong(ex.check_sample_tokens(by_logits_to_probs), "write the loop yourself", "text.logits_to_probs")
    assert_wrong(ex.check_sample_tokens(by_decoding), "write the loop yourself", "decoding.sample")
    assert_wrong(ex.check_sample_tokens(hidden), "write the loop yourself", "gpt.generate")
    assert [gpt.generate, text.sample_logits, text.logits_to_probs, text.filter_logits, decoding.sample] == originals
    again = gpt.generate(model, prompt, 12, 2.5, 4, generator=torch.Generator().manual_seed(19))
    assert torch.equal(again, want)  # the restored functions still work


def test_forbidden_restores_on_error():
    original = gpt.generate
    try:
        with ex._forbidden(("gpt.generate",)):
            assert gpt.generate is not original
            raise KeyError("boom")
    except KeyError:
        pass
    assert gpt.generate is original


def test_sample_variants_differ_from_the_answer_and_from_each_other():
    """On the checker's runs, every mistake gives other tokens than the answer and than every other mistake,
    by several tokens: else a hint is unreachable, or names the wrong mistake."""
    model = ex._tiny_gpt()
    runs = [(torch.tensor([prompt]), steps, temperature, top_k, seed)
            for prompt, steps, temperature, top_k, seed in ex.SAMPLE_RUNS]
    want = torch.cat([gpt.generate(model, p, n, t, k, generator=torch.Generator().manual_seed(s))[0]
                      for p, n, t, k, s in runs])
    outputs = [torch.cat([ex._loop(model, p, n, t, k, torch.Generator().manual_seed(s), **kwargs)[0]
                          for p, n, t, k, s in runs]) for kwargs, _ in [({}, ""), *ex.SAMPLE_VARIANTS]]
    assert torch.equal(outputs[0], want)  # _loop without a mistake is gpt.generate
    names = ["answer"] + [hint[:40] for _, hint in ex.SAMPLE_VARIANTS]
    for a, b in itertools.combinations(range(len(outputs)), 2):
        assert (outputs[a] != outputs[b]).sum() >= 3, (names[a], names[b])


# --- exercise 5: top-p ------------------------------------------------------------------------------------


def test_top_p():
    assert_right(ex.check_top_p(sol.top_p_filter))

    def by_hand(logits, p):
        s, order = torch.sort(logits, dim=-1, descending=True)
        probs = s.softmax(-1)
        drop = probs.cumsum(-1) - probs >= p
        return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))

    assert_right(ex.check_top_p(by_hand))
    for name, hint in ex.TOP_P_HINTS.items():
        assert_wrong(ex.check_top_p(lambda logits, p, name=name: ex._top_p_variants(logits, p)[name]),
                     hint.split(":")[0][:30])
    as_probs = lambda logits, p: by_hand(logits, p).softmax(-1)  # noqa: E731
    assert_wrong(ex.check_top_p(as_probs), "not probabilities")
    original = text.filter_logits
    assert_wrong(ex.check_top_p(lambda logits, p: text.filter_logits(logits, top_p=p)), "write the filter yourself",
                 "text.filter_logits")
    assert text.filter_logits is original
    everything = lambda logits, p: torch.full_like(logits, float("-inf"))  # noqa: E731
    assert_wrong(ex.check_top_p(everything), "most likely token must always stay")
    top3 = lambda logits, p: logits.masked_fill(logits < logits.topk(3).values[:, -1:], float("-inf"))  # noqa: E731
    assert_wrong(ex.check_top_p(top3), "nucleus has")
    assert_wrong(ex.check_top_p(lambda logits, p: logits[:2]), "shape")
    assert_not_done(ex.check_top_p(stub))


def test_top_p_variants_really_differ_from_the_answer():
    """Each wrong variant must differ from the right answer on the checker's inputs, or its hint is unreachable."""
    logits = torch.randn(4, 12, generator=torch.Generator().manual_seed(0)) * 2
    for name in ex.TOP_P_HINTS:
        differs = [not ex._same_support(ex._top_p_variants(logits, p)[name], text.filter_logits(logits, top_p=p))
                   for p in (0.9, 0.5, 0.05)]
        assert any(differs), name


# --- exercise 6: the repetition penalty ----------------------------------------------------------------------


def test_repetition_penalty():
    assert_right(ex.check_repetition_penalty(sol.penalise))
    original = decoding.apply_repetition_penalty
    assert_wrong(ex.check_repetition_penalty(decoding.apply_repetition_penalty), "write the penalty yourself")
    assert decoding.apply_repetition_penalty is original

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
    assert_not_done(ex.check_repetition_penalty(stub))


def test_repetition_penalty_refuses_hugging_face_s_processor():
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    def by_hf(logits, previous, penalty):
        return RepetitionPenaltyLogitsProcessor(penalty)(previous[None], logits[None].clone())[0]

    logits, previous = torch.tensor([2.0, -1.0, 0.5, -3.0]), torch.tensor([0, 1, 1])
    assert torch.allclose(by_hf(logits, previous, 1.5), sol.penalise(logits, previous, 1.5))
    original = RepetitionPenaltyLogitsProcessor.__call__
    assert_wrong(ex.check_repetition_penalty(by_hf), "write the penalty yourself", "RepetitionPenaltyLogitsProcessor")
    assert RepetitionPenaltyLogitsProcessor.__call__ is original
