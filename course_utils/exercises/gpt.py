"""The exercise checkers of notebook 05 (transformers from scratch); the references are in solutions/gpt.py."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from course_utils import decoding, gpt, text
from course_utils.exercises import Wrong, as_tensor, call, call_refusing, checker, close, refusing

# --- the package's shortcuts: an exercise that asks for an algorithm refuses the function that does it ------------


SHORTCUT_OWNERS = {"gpt": gpt, "text": text, "decoding": decoding, "F": F}


def _targets(names: tuple[str, ...]) -> list[tuple[Any, str, str]]:
    """``"module.function"`` names as :func:`refusing` targets (and transformers' penalty, if imported)."""
    targets = [(SHORTCUT_OWNERS[name.split(".")[0]], name.split(".")[1], name) for name in names]
    hf = sys.modules.get("transformers.generation.logits_process")  # only if the learner has imported it
    if "decoding.apply_repetition_penalty" in names and hf is not None:
        targets.append((hf.RepetitionPenaltyLogitsProcessor, "__call__",
                        "transformers' RepetitionPenaltyLogitsProcessor"))
    return targets


def _forbidden(names: tuple[str, ...]) -> contextlib.AbstractContextManager[list[str]]:
    """:func:`refusing` for ``"module.function"`` names."""
    return refusing(_targets(names))


def call_without(shortcuts: tuple[str, ...], task: str, fn: Any, what: str, *args: Any) -> Any:
    """:func:`course_utils.exercises.call_refusing` for ``"module.function"`` names."""
    return call_refusing(_targets(shortcuts), task, fn, what, *args, advice="build it from torch operations "
                         "(the exercise says which package functions you may use)")


# --- exercise 1 (section 2.4): a sliding-window causal mask -----------------------------------------------


def _band(size: int, window: int) -> torch.Tensor:
    """True on the diagonal and the ``window - 1`` diagonals below it."""
    return torch.ones(size, size, dtype=torch.bool).tril().triu(-(window - 1))


def _bool_mask(value: Any, size: int) -> torch.Tensor:
    m = as_tensor(value, "your mask", shape=(size, size), floating=False)
    if m.dtype != torch.bool:
        if m.is_floating_point() and torch.isinf(m).any():
            raise Wrong("this is an additive mask (0 and -inf): return booleans, True where attention is allowed; "
                        "masked_fill(~mask, float('-inf')) turns them into the additive form later")
        if set(m.unique().tolist()) <= {0, 1}:
            raise Wrong(f"your mask has dtype {m.dtype}; return booleans (True = may attend): comparisons of "
                        "tensors give booleans, and .bool() converts 0/1")
        raise Wrong(f"your mask has dtype {m.dtype} and values other than 0 and 1; return a boolean tensor")
    return m


@checker(solution="local_causal_mask")
def check_local_causal_mask(mask_fn: Callable[[int, int], torch.Tensor]) -> str:
    """``mask_fn(size, window)``: ``[size, size]`` booleans, True where ``0 <= i - j < window`` (query i, key j)."""
    size = 7
    for window in (3, 1, 7, 10):
        got = _bool_mask(call(mask_fn, "your function", size, window), size)
        want = _band(size, window)
        if torch.equal(got, want):
            continue
        if torch.equal(got, want.T):
            raise Wrong("your mask is transposed: True above the diagonal lets position i look at later positions. "
                        "Row i is the query: allow keys j with j <= i")
        if torch.equal(got, _band(size, size)) and window < size:
            raise Wrong(f"with window={window} every earlier position is allowed: limit each query to the last "
                        "`window` positions, itself included (i - j < window)")
        if torch.equal(got, _band(size, window + 1)):
            raise Wrong(f"each query sees {window + 1} positions with window={window}: the window counts the position "
                        "itself, so use i - j < window, not <=")
        if torch.equal(got, want & ~torch.eye(size, dtype=torch.bool)):
            raise Wrong("the diagonal is False: a position must be able to attend to itself (i - j = 0 is allowed)")
        if window >= size and torch.equal(got, _band(size, window - 1)):
            raise Wrong("with a window longer than the sequence the mask is the plain causal mask (torch.tril)")
        rows = [i for i in range(size) if not torch.equal(got[i], want[i])]
        raise Wrong(f"with size={size}, window={window}, rows {rows} differ from 0 <= i - j < window "
                    f"(row 0 should be {want[0].int().tolist()}, yours is {got[0].int().tolist()})")
    return "each position sees itself and the window - 1 positions before it; window >= size is the causal mask"


# --- exercise 2 (section 2.6): multi-head attention with ALiBi's distance bias ----------------------------------


def _alibi_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slope: float, C: int, *, sign: float = -1.0,
                scale: str = "hs", bias_first: bool = False, mask: str = "before", absolute: bool = False,
                dim: int = -1, weights: bool = False) -> torch.Tensor:
    """One ALiBi head on q, k, v [T, hs]; its keyword arguments make the common mistakes, for the hints."""
    T, hs = q.shape
    dist = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).float()  # i - j
    bias = sign * slope * (dist.abs() if absolute else dist)
    div = {"hs": math.sqrt(hs), "C": math.sqrt(C), "none": 1.0, "hs unrooted": float(hs)}[scale]
    s = (q @ k.T + bias) / div if bias_first else q @ k.T / div + bias
    if mask == "before":
        s = s.masked_fill(dist < 0, float("-inf"))
    w = s.softmax(dim=dim)
    if mask == "after":  # the future weights zeroed after the softmax: the rows no longer sum to 1
        w = w.masked_fill(dist < 0, 0.0)
    return w if weights else w @ v


def _alibi(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor, slopes: Any, *,
           split: str = "channels", merge: bool = True, slope_order: str = "as given", **kwargs: Any) -> torch.Tensor:
    """Causal multi-head ALiBi attention, [T, C]: head n reads channels n*hs ... (n+1)*hs - 1 and uses slopes[n].

    ``split``, ``merge`` and ``slope_order`` (and the keywords of :func:`_alibi_core`) make the common mistakes.
    """
    slopes = torch.as_tensor(slopes, dtype=torch.float32).flatten()
    (T, C), h = x.shape, len(slopes)
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    if split == "none":  # one head of size C with the first slope
        return _alibi_core(q, k, v, float(slopes[0]), C, **kwargs)
    hs = C // h
    heads = ((lambda t: t.view(T, h, hs).transpose(0, 1)) if split == "channels"
             else (lambda t: t.reshape(h, T, hs)))  # "rows": cuts the sequence, not each position's channels
    used = {"as given": slopes, "first": slopes[:1].expand(h), "reversed": slopes.flip(0),
            "zero": torch.zeros(h)}[slope_order]
    qh, kh, vh = heads(q), heads(k), heads(v)
    out = torch.stack([_alibi_core(qh[n], kh[n], vh[n], float(used[n]), C, **kwargs) for n in range(h)])
    if kwargs.get("weights") or not merge:
        return out  # [h, T, T] weights, or the heads stacked [h, T, hs]
    return out.transpose(0, 1).reshape(T, C)


ZEROED_AFTER = ("you zeroed the weights of later keys AFTER the softmax: those keys had already taken their share "
                "of it, so each row's weights no longer sum to 1 (section 2.4 warns about this). Hide the later "
                "keys in the scores, before the softmax, so that the weights of the allowed keys sum to 1")
STACKED = ("you returned the heads stacked, [h, T, hs]: put them side by side, y.transpose(0, 1).reshape(T, C), "
           "as the package's attention does before c_proj")
ALIBI_SHORTCUTS = ("gpt.attention", "F.scaled_dot_product_attention")
ALIBI_VARIANTS: list[tuple[dict[str, Any], str]] = [
    (dict(slope_order="zero"), "your heads ignore the slopes: subtract slopes[n] * (i - j) from head n's scaled "
                               "scores, so that a key d positions back loses slopes[n] * d"),
    (dict(slope_order="first"), "every head uses the first slope: head n takes slopes[n] (reshape the slopes to "
                                "[h, 1, 1] so that they broadcast over each head's [T, T] scores)"),
    (dict(slope_order="reversed"), "your slopes are in reverse order: head n (channels n*hs to (n+1)*hs - 1) takes "
                                   "slopes[n]"),
    (dict(split="none"), "you computed one head of size C with the first slope: split the C channels into "
                         "h = len(slopes) heads of size hs = C // h, as section 2.5 does"),
    (dict(split="rows"), "your heads mix positions: .view(h, T, hs) cuts the [T, C] tensor along the sequence. "
                         "Split each position's channels, .view(T, h, hs), then .transpose(0, 1) for [h, T, hs]"),
    (dict(merge=False), STACKED),
    (dict(sign=1.0), "your bias favours distant keys: the score of key j for query i must go DOWN with the distance, "
                     "scores - slope * (i - j) (i - j >= 0 for every key the query may see)"),
    (dict(bias_first=True), "you added the bias before dividing by sqrt(hs), which shrinks it too: divide q @ k.T by "
                            "sqrt(hs) first, then subtract slope * (i - j)"),
    (dict(scale="none"), "you did not scale the scores: divide q @ k.T by sqrt(hs), the head size, before adding "
                         "the bias"),
    (dict(scale="C"), "you scaled by sqrt(C), the embedding width; scale by sqrt(hs), hs = C // h, the size of "
                      "each head's q and k"),
    (dict(scale="hs unrooted"), "you divided the scores by hs; divide by its square root, sqrt(hs): the dot product "
                                "of two unit-variance vectors of length hs has variance hs"),
    (dict(mask="after"), ZEROED_AFTER),
    (dict(mask="after", absolute=True), ZEROED_AFTER),
    (dict(mask="none"), "position 0 sees the future: the bias alone does not hide later keys. Set the scores where "
                         "j > i to float('-inf') before the softmax"),
    (dict(mask="none", absolute=True), "position 0 sees the future: a bias of -slope * |i - j| makes later keys "
                                        "less likely but not impossible. Set the scores where j > i to "
                                        "float('-inf') before the softmax"),
    (dict(dim=0), "the softmax runs down the columns (dim=0 of one head's [T, T] scores, dim=1 of [h, T, T]); each "
                  "query's weights over the keys form a row: softmax(dim=-1)"),
]
ALIBI_RUNS = ((0.75, 0.25), (0.0, 0.0), (1.0, 0.5, 0.25, 0.125))  # the slopes of each run: 2 heads, then 4


@checker(solution="alibi_attention")
def check_alibi_attention(attention_fn: Callable[..., torch.Tensor]) -> str:
    """``attention_fn(x [T, C], w_q, w_k, w_v [C, C], slopes [h])``: causal multi-head ALiBi attention, ``[T, C]``."""
    g = torch.Generator().manual_seed(0)
    T, C = 6, 8
    x = torch.randn(T, C, generator=g)
    w_q, w_k, w_v = (torch.randn(C, C, generator=g) * 0.5 for _ in range(3))
    for run in ALIBI_RUNS:
        slopes, h = torch.tensor(run), len(run)
        out = call_without(ALIBI_SHORTCUTS, "write the attention yourself", attention_fn, "your function", x.clone(),
                           w_q.clone(), w_k.clone(), w_v.clone(), slopes.clone())
        if isinstance(out, torch.Tensor) and tuple(out.shape) in ((T, T), (h, T, T)):
            raise Wrong(f"your function returns a {list(out.shape)} tensor: those are attention weights; return the "
                        "weighted sums of the values, the heads side by side, of shape [T, C]")
        if isinstance(out, torch.Tensor) and tuple(out.shape) == (h, T, C // h):
            raise Wrong(STACKED)
        y = as_tensor(out, "your output", shape=(T, C))
        if close(y, _alibi(x, w_q, w_k, w_v, slopes)):
            continue
        for kwargs, hint in ALIBI_VARIANTS:
            if close(y, _alibi(x, w_q, w_k, w_v, **{"slopes": slopes, **kwargs})):
                raise Wrong(hint)
        raise Wrong(f"with slopes {list(run)} ({h} heads of size {C // h}) the output differs from each head's "
                    "softmax(q @ k.T / sqrt(hs) - slope * (i - j), future masked) @ v, the heads side by side")
    return ("each head: its channels of q, k, v, scores / sqrt(hs) - slopes[n] * (i - j), the future masked, "
            "softmax over the keys, times v; the heads side by side")


# --- exercise 3 (section 2.7): the original transformer's post-norm block ----------------------------------------


BLOCK_C, BLOCK_H = 16, 2  # the checker's block: 16 channels, 2 heads


def _reference_block() -> gpt.Block:
    """A seeded ``gpt.Block`` whose weights are large enough, and whose two LayerNorm gains differ enough, that
    every mistake of :func:`_block_variants` changes the output."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        block = gpt.Block(gpt.GPTConfig(block_size=8, n_layer=1, n_head=BLOCK_H, n_embd=BLOCK_C))
        with torch.no_grad():
            for name, p in block.named_parameters():
                p.copy_(1 + 0.5 * torch.randn_like(p) if name.startswith("ln") else 0.3 * torch.randn_like(p))
    return block.eval()


def _post_norm(b: gpt.Block, x: torch.Tensor) -> torch.Tensor:
    """Vaswani et al.'s order on ``b``'s layers: each sum of the stream and a sub-layer's output, normalised."""
    x = b.ln_1(x + b.attn(x))
    return b.ln_2(x + b.mlp(x))


def _block_variants(b: gpt.Block, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The post-norm block's output with each common mistake (``b``'s sub-layers, not its forward)."""

    def plain(t: torch.Tensor) -> torch.Tensor:  # a LayerNorm without the block's learnt gain
        return F.layer_norm(t, t.shape[-1:])

    attn, mlp, ln_1, ln_2 = b.attn, b.mlp, b.ln_1, b.ln_2
    h = ln_1(x + attn(x))  # the right stream after the attention
    raw = x + attn(x)  # the same, not normalised
    pre = x + attn(ln_1(x))
    mlp_first = ln_1(x + mlp(x))
    return {
        "pre-norm": pre + mlp(ln_2(pre)),
        "no attention residual": ln_2(ln_1(attn(x)) + mlp(ln_1(attn(x)))),
        "no MLP residual": ln_2(mlp(h)),
        "no residual": ln_2(mlp(ln_1(attn(x)))),
        "normalised output": (x + ln_1(attn(x))) + ln_2(mlp(x + ln_1(attn(x)))),
        "no last norm": h + mlp(h),
        "no first norm": ln_2(raw + mlp(raw)),
        "sum not normalised": ln_2(raw + mlp(h)),
        "swapped norms": ln_1(ln_2(raw) + mlp(ln_2(raw))),
        "ln_1 twice": ln_1(h + mlp(h)),
        "ln_2 twice": ln_2(ln_2(raw) + mlp(ln_2(raw))),
        "no gain": plain(plain(raw) + mlp(plain(raw))),
        "no norm": raw + mlp(raw),
        "MLP first": ln_2(mlp_first + attn(mlp_first)),
    }


BLOCK_HINTS = {
    "pre-norm": "you wrote the pre-norm block of section 2.7 (GPT-2's order, the LayerNorm before each sub-layer). "
                "In post-norm the sub-layer reads the stream itself, and ln_1 should receive the sum of the stream "
                "and the sub-layer's output, not the stream",
    "no attention residual": "the attention's output replaces the stream: add the stream to it before the "
                             "LayerNorm, so that ln_1 receives their sum",
    "no MLP residual": "the MLP's output replaces the stream: add the stream to it before the LayerNorm, "
                       "so that ln_2 receives their sum",
    "no residual": "neither sub-layer's output is added to the stream (no residual connection): normalise the sum "
                   "of the stream and each sub-layer's output (ln_1 for attention, ln_2 for the MLP)",
    "normalised output": "you normalised the sub-layer's output before adding it to the stream: the LayerNorm "
                         "receives the sum of the stream and the sub-layer's output, not the output alone",
    "no last norm": "the sum after the MLP is not normalised: the block's output is that sum after block.ln_2",
    "no first norm": "the sum after the attention is not normalised: block.ln_1 receives it, and its output is the "
                     "stream the MLP reads",
    "sum not normalised": "your MLP reads the normalised stream but you added its output to the stream from before "
                          "block.ln_1: the normalised stream replaces the old one, and the MLP's output is added "
                          "to it",
    "swapped norms": "the LayerNorms are swapped: block.ln_1 follows the attention, block.ln_2 the MLP "
                     "(each has its own learnt gain)",
    "ln_1 twice": "you used block.ln_1 after both sub-layers: the MLP's sum goes through block.ln_2",
    "ln_2 twice": "you used block.ln_2 after both sub-layers: the attention's sum goes through block.ln_1",
    "no gain": "you normalised without the block's learnt gain (F.layer_norm without a weight, or a new "
               "nn.LayerNorm): use the block's own block.ln_1 and block.ln_2",
    "no norm": "no LayerNorm: normalise each sum, block.ln_1 after the attention and block.ln_2 after the MLP",
    "MLP first": "your block runs the MLP first: the attention comes first, then the MLP",
}


@checker(solution="post_norm_forward")
def check_post_norm_forward(forward_fn: Callable[[Any, torch.Tensor], torch.Tensor]) -> str:
    """``forward_fn(block, x [B, T, C])``: the stream after a ``gpt.Block``'s two sub-layers in the post-norm order,
    compared with ``ln_2(h + mlp(h))``, ``h = ln_1(x + attn(x))``, on the same block's layers."""
    reference = _reference_block()
    x = 2 * torch.randn(2, 6, BLOCK_C, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, variants = _post_norm(reference, x), _block_variants(reference, x)
        out = call(forward_fn, "your function", reference, x.clone())
    y = as_tensor(out, "your output", shape=tuple(x.shape))
    if close(y, want):
        return ("x = ln_1(x + attn(x)), then ln_2(x + mlp(x)): post-norm, each sum of the stream and a sub-layer's "
                "output normalised")
    for name, variant in variants.items():
        if close(y, variant):
            raise Wrong(BLOCK_HINTS[name])
    raise Wrong("your output differs from the post-norm block's: check the order against Exercise 3's description "
                "(the attention first; each sub-layer reads the stream itself; its output is added to the stream and "
                "the sum normalised by that sub-layer's own LayerNorm)")


# --- exercise 4 (section 4.1): the sampling loop with temperature and top-k --------------------------------------


def _tiny_gpt() -> gpt.GPT:
    """A small seeded GPT whose next-token distributions are peaked enough that every mistake changes the draws."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = gpt.GPT(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_embd=16)
    with torch.no_grad():
        model.lm_head.weight.mul_(SHARPEN)
    return model.eval()


SHARPEN = 15.0  # the tiny model's output weights, times this: logits spread over a few nats


def _loop(model: gpt.GPT, idx: torch.Tensor, steps: int, temperature: float, top_k: int, generator: torch.Generator,
          *, crop: str = "last", temp: str = "divide", keep: str = "largest", draw: str = "sample",
          feed: bool = True, position: int = -1) -> torch.Tensor:
    """The sampling loop; its keyword arguments make the common mistakes, for the hints."""
    block = model.config.block_size
    out = idx
    with torch.no_grad():
        for _ in range(steps):
            seq = out if feed else idx
            context = {"last": seq[:, -block:], "first": seq[:, :block], "one short": seq[:, -(block - 1):]}[crop]
            logits = model(context)[0][:, position].float()
            logits = {"divide": logits / temperature, "multiply": logits * temperature}.get(temp, logits)
            if keep != "all":
                k = top_k + {"one more": 1, "one fewer": -1}.get(keep, 0)
                kth = torch.topk(logits, k, dim=-1, largest=keep != "smallest").values[:, -1:]
                logits = logits.masked_fill(logits > kth if keep == "smallest" else logits < kth, float("-inf"))
            probs = logits.softmax(dim=-1)
            if temp == "after":
                probs = probs / temperature
            if draw == "argmax":
                nxt = probs.argmax(-1, keepdim=True)
            else:
                nxt = torch.multinomial(probs, 1, generator=generator)
            out = torch.cat([out, nxt], dim=1)
    return out


SAMPLE_VARIANTS: list[tuple[dict[str, Any], str]] = [
    (dict(draw="argmax"), "you picked the most likely token (argmax): that is greedy decoding, and temperature and "
                          "top-k change nothing. Draw the token from the probabilities, with the generator"),
    (dict(feed=False), "every token is drawn from the prompt alone: feed the drawn token back, appending it to the "
                       "text, and give the model the grown text at the next step"),
    (dict(keep="smallest"), "your top-k keeps the k LEAST likely tokens: keep the k largest logits (torch.topk "
                            "returns the largest by default)"),
    (dict(temp="after"), "the temperature changes nothing in your loop: dividing the probabilities after the softmax "
                         "is undone when torch.multinomial renormalises them. Divide the LOGITS by the temperature, "
                         "before the softmax"),
    (dict(temp="multiply"), "you multiplied the logits by the temperature: divide them, so that a temperature below 1 "
                            "sharpens the distribution"),
    (dict(keep="all"), "no top-k: every token can still be drawn. Only the top_k most likely may be; hide the others "
                       "before the softmax"),
    (dict(keep="one more"), "you keep k + 1 tokens: the k-th largest logit is the threshold, and only the logits "
                            "below it go"),
    (dict(keep="one fewer"), "you keep only k - 1 tokens: the k-th largest logit itself must stay (drop the logits "
                             "strictly below it)"),
    (dict(position=0), "you drew from the logits of the FIRST position: the prediction of the next token is at the "
                       "last position"),
    (dict(crop="first"), "you fed the model the FIRST block_size tokens once the text grew longer: keep the LAST "
                         "ones, the context just before the token to predict"),
    (dict(crop="one short"), "you cropped the context to block_size - 1 tokens: the model can read block_size, so "
                             "keep the last block_size"),
]

# (prompt, steps, temperature, top_k, seed): the first stays within the block, the second grows past it
# (prompt, steps, temperature, top_k, seed): eight runs, 80 tokens, so that every mistake of SAMPLE_VARIANTS
# differs from the answer and from every other mistake by 11 tokens or more, on torch 2.2 as on 2.14 (a few
# hand-picked seeds did it on one version only: torch's sampling draws are not the same across versions)
SAMPLE_RUNS = tuple(([3, 1] if s % 2 else [2, 7, 1, 8, 2], 10, t, k, 100 + s) for s, (t, k) in enumerate(
    [(0.5, 4), (2.5, 4), (1.0, 3), (2.5, 5), (0.7, 4), (2.0, 3), (1.5, 4), (3.0, 4)]))


def _tokens(value: Any, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    """The learner's tokens as a [1, T + steps] long tensor, or :class:`Wrong` with a hint about their form."""
    T = prompt.shape[1]
    got = as_tensor(value, "your result", floating=False)
    if got.is_floating_point():
        raise Wrong(f"your result has dtype {got.dtype}: return token indices (torch.multinomial gives int64)")
    got = got.long()
    shape, want = tuple(got.shape), (1, T + steps)
    if shape == want:
        if not torch.equal(got[:, :T], prompt):
            raise Wrong(f"the first {T} tokens of your result are not the prompt: return idx with the new tokens "
                        "appended after it")
        return got
    if shape == (1, steps):
        raise Wrong(f"your result holds only the {steps} new tokens: return the prompt followed by them, "
                    "[1, T + steps]")
    if shape == (1, T + 1):
        raise Wrong(f"your result has one new token, not {steps}: the loop must draw and append `steps` tokens")
    if shape == (T + steps,) or shape == (T + steps, 1):
        raise Wrong(f"your result has shape {shape}: keep the batch dimension, [1, T + steps] = {want} "
                    "(append each new token as a [1, 1] tensor, along dimension 1)")
    raise Wrong(f"your result should have shape {want} (the prompt of {T} tokens and {steps} new ones), "
                f"but it has shape {shape}")


SAMPLE_SHORTCUTS = ("gpt.generate", "decoding.sample", "decoding.generate", "text.sample_logits",
                    "text.logits_to_probs", "text.filter_logits")


def _run(sample_fn: Any, model: gpt.GPT, prompt: torch.Tensor, steps: int, temperature: float, top_k: int,
         seed: int) -> Any:
    """The learner's loop on a copy of the prompt, with a freshly seeded generator and the package's samplers
    refused."""
    with torch.no_grad():
        return call_without(SAMPLE_SHORTCUTS, "write the loop yourself", sample_fn, "your function", model,
                            prompt.clone(), steps, temperature, top_k, torch.Generator().manual_seed(seed))


@checker(solution="sample_tokens")
def check_sample_tokens(sample_fn: Callable[..., torch.Tensor]) -> str:
    """``sample_fn(model, idx [1, T], steps, temperature, top_k, generator)``: the loop of ``gpt.generate``."""
    model = _tiny_gpt()
    block = model.config.block_size
    suspects = list(range(len(SAMPLE_VARIANTS)))  # the mistakes that explain every run so far
    first_wrong = None
    for prompt_list, steps, temperature, top_k, seed in SAMPLE_RUNS:
        prompt = torch.tensor([prompt_list])
        want = gpt.generate(model, prompt, steps, temperature, top_k, generator=torch.Generator().manual_seed(seed))

        args = (model, prompt, steps, temperature, top_k, seed)
        try:
            got = _tokens(_run(sample_fn, *args), prompt, steps)
        except Wrong as wrong:
            if "longer than block_size" in str(wrong):
                raise Wrong(f"your function crashed once the text grew past block_size ({block} here): the model "
                            "reads at most block_size tokens, so feed it only the last block_size of them "
                            f"(model.config.block_size). The error: {wrong}") from None
            raise
        if not torch.equal(got, want):
            if not torch.equal(_tokens(_run(sample_fn, *args), prompt, steps), got):
                raise Wrong("two runs with the same seeded generator gave different tokens: pass it to the draw, "
                            "torch.multinomial(probs, 1, generator=generator)")
            if first_wrong is None:
                new = int((got != want).nonzero()[0, 1]) - prompt.shape[1]
                first_wrong = f"with temperature={temperature}, top_k={top_k} your new token {new} differs"
        suspects = [i for i in suspects if torch.equal(got, _loop(model, prompt, steps, temperature, top_k,
                                                                  torch.Generator().manual_seed(seed),
                                                                  **SAMPLE_VARIANTS[i][0]))]
    if first_wrong is None:
        return ("crop, last position, / temperature, top-k, softmax, draw with the generator, append: "
                "gpt.generate's loop")
    if suspects:
        raise Wrong(SAMPLE_VARIANTS[suspects[0]][1])
    raise Wrong(f"{first_wrong} from gpt.generate's (same seed): crop to the last block_size tokens, take the last "
                "position's logits, divide by the temperature, keep the top k, softmax, torch.multinomial with the "
                "generator, append")


# --- exercise 5 (section 4.2): top-p (nucleus) filtering -------------------------------------------------


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
                "when the tokens above it already hold p of the mass, so that the most likely token always stays",
    "unsorted": "the result is in sorted order: put the filtered values back in the original order (scatter "
                "with the sort's indices)",
    "no softmax": "you accumulated logits; accumulate probabilities: softmax the sorted logits, then cumsum",
    "ascending": "you kept the least likely tokens: sort in descending order (torch.sort(..., descending=True))",
}


TOP_P_SHORTCUTS = ("text.filter_logits", "text.logits_to_probs", "text.sample_logits")


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


@checker(solution="top_p_filter")
def check_top_p(top_p_fn: Callable[[torch.Tensor, float], torch.Tensor]) -> str:
    """``top_p_fn(logits [B, V], p)``: the logits with ``-inf`` outside each row's nucleus of mass ``p``."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 12, generator=g) * 2
    for p in (0.9, 0.5, 0.05):
        out = call_without(TOP_P_SHORTCUTS, "write the filter yourself", top_p_fn, "your function", logits.clone(), p)
        y = _filtered(out, tuple(logits.shape))
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


# --- exercise 6 (section 4.3): the repetition penalty ----------------------------------------------------


@checker(solution="penalise")
def check_repetition_penalty(penalty_fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> str:
    """``penalty_fn(logits [V], previous [T], penalty)``: the repetition penalty (CTRL's, with Hugging Face's
    treatment of negative logits) on every token in ``previous``."""
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.5, 0.0, -0.5, 3.0])
    previous = torch.tensor([0, 1, 1, 4, 6, 0, 0])  # tokens 0, 1, 4, 6; some more than once
    penalty = 1.5
    original = logits.clone()
    out = call_without(("decoding.apply_repetition_penalty",), "write the penalty yourself", penalty_fn,
                       "your function", logits, previous.clone(), penalty)
    if not torch.equal(logits, original):
        raise Wrong("your function changed the logits it was given (in place): work on a copy, e.g. logits.clone()")
    y = as_tensor(out, "your penalised logits", shape=tuple(logits.shape))
    want = decoding.apply_repetition_penalty(logits, previous, penalty)
    if close(y, want):
        return ("positive logits of seen tokens divided by the penalty, negative ones multiplied: both lowered, "
                "so less likely relative to the unseen tokens")
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
