"""Decoding: how a language model's next-token distributions become text (notebook 05, section 4).

Any model that maps ``[B, T]`` token indices to logits ``[B, T, V]`` (or to
``(logits, loss)``, as :class:`course_utils.gpt.GPT` does) and has
``config.block_size`` works. Every function takes one prompt, a 1-D tensor of
indices, and returns the prompt followed by the new tokens.

- :func:`greedy`: the most likely token every time (deterministic; loops);
- :func:`beam_search`: keeps the ``num_beams`` most likely sequences so far;
- :func:`sample`: draws from the distribution, reshaped by a temperature,
  top-k and top-p with :func:`course_utils.text.sample_logits` (the course's
  one sampling loop; it also takes a batch ``[B, T]``, and ``gpt.generate`` is it);
- :func:`apply_repetition_penalty`: the repetition penalty (CTRL's, as Hugging Face applies it) on tokens
  already in the text;
- :func:`generate`: one front door in the style of Hugging Face's
  ``generate``, except that a sampling setting given without ``do_sample=True``
  is an error here, where Hugging Face ignores it with a warning;
- :func:`continuation_log_probs`: the model's log-probability of each new
  token, each from the context it was generated with.
"""

from __future__ import annotations

import torch
from torch import nn

from course_utils import text
from course_utils.training import evaluating


def _block_size(model: nn.Module) -> int | None:
    return getattr(getattr(model, "config", None), "block_size", None)


def _check_prompt(ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or len(ids) < 1 or ids.is_floating_point():
        raise ValueError("the prompt must be a 1-D tensor of token indices with at least one token, "
                         f"got {getattr(ids, 'shape', type(ids).__name__)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be non-negative, got {max_new_tokens}")
    return ids.long()


def _check_prompts(ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """``ids`` as a ``[B, T]`` batch: one prompt ``[T]`` becomes a batch of one."""
    if isinstance(ids, torch.Tensor) and ids.ndim == 2:
        if ids.shape[1] < 1 or ids.shape[0] < 1 or ids.is_floating_point():
            raise ValueError(f"prompts must be [B, T] token indices with T >= 1 (a prompt of at least one token), "
                             f"got {tuple(ids.shape)}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be non-negative, got {max_new_tokens}")
        return ids.long()
    return _check_prompt(ids, max_new_tokens)[None]


def logits_of(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The model's logits ``[B, T, V]`` for ``ids`` ``[B, T]``, cropped to its last ``block_size`` tokens."""
    block = _block_size(model)
    out = model(ids if block is None else ids[:, -block:])
    return (out[0] if isinstance(out, tuple) else out).float()


def next_logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The logits ``[B, V]`` of the token after each row of ``ids`` ``[B, T]``."""
    return logits_of(model, ids)[:, -1]


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """The repetition penalty: lower the logit of every token already in ``previous``.

    CTRL (Keskar et al., 2019) divides the logits of seen tokens by ``penalty``.
    That raises a negative logit, so Hugging Face's
    ``RepetitionPenaltyLogitsProcessor`` (and this course) multiplies negative
    ones instead: a positive logit is divided by ``penalty``, a negative one
    multiplied by it. ``logits`` is ``[V]`` or
    ``[B, V]``, ``previous`` the indices seen so far (``[T]`` or ``[B, T]``);
    ``penalty = 1`` changes nothing. As in Hugging Face, the prompt counts too.
    """
    if penalty <= 0:
        raise ValueError(f"repetition_penalty must be positive, got {penalty}")
    if penalty == 1.0:
        return logits
    squeeze = logits.ndim == 1
    logits2, prev2 = (logits[None], previous.reshape(1, -1)) if squeeze else (logits, previous)
    seen = torch.gather(logits2, 1, prev2)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    out = logits2.scatter(1, prev2, seen)
    return out[0] if squeeze else out


def greedy(model: nn.Module, ids: torch.Tensor, max_new_tokens: int, repetition_penalty: float = 1.0) -> torch.Tensor:
    """Append the most likely token ``max_new_tokens`` times (ties: the lowest index)."""
    ids = _check_prompt(ids, max_new_tokens)
    out = ids.to(next(model.parameters()).device)
    with evaluating(model):
        for _ in range(max_new_tokens):
            logits = apply_repetition_penalty(next_logits(model, out[None])[0], out, repetition_penalty)
            out = torch.cat([out, logits.argmax()[None]])
    return out.cpu()


def sample(
    model: nn.Module, ids: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None, repetition_penalty: float = 1.0, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Append ``max_new_tokens`` tokens drawn by :func:`course_utils.text.sample_logits` (the one sampling loop).

    ``ids`` is one prompt ``[T]`` or a batch of prompts of one length ``[B, T]`` (each row drawn on its own;
    :func:`course_utils.gpt.generate` is this loop). Each step feeds the last ``block_size`` tokens; the
    repetition penalty is applied to the logits first, then the temperature, top-k and top-p (the order of
    Hugging Face's processors). A seeded CPU ``generator`` gives the same text on every device.
    """
    batch = _check_prompts(ids, max_new_tokens)
    device = next(model.parameters()).device
    out = batch.to(device)
    with evaluating(model):
        for _ in range(max_new_tokens):
            logits = apply_repetition_penalty(next_logits(model, out), out, repetition_penalty)
            nxt = text.sample_logits(logits, temperature, top_k, top_p, generator)
            out = torch.cat([out, nxt[:, None].to(device)], dim=1)
    return out[0].cpu() if ids.ndim == 1 else out.cpu()


def beam_search(model: nn.Module, ids: torch.Tensor, max_new_tokens: int, num_beams: int = 4) -> torch.Tensor:
    """The most likely continuation that beam search finds: ``num_beams`` hypotheses kept at every step.

    Each step extends every hypothesis by every token, scores each by its total
    log-probability, and keeps the ``num_beams`` best. All hypotheses have the
    same length (no end token), so no length penalty is needed. ``num_beams=1``
    is greedy decoding. It finds what Hugging Face's ``generate(num_beams=...)`` finds with no end token
    (``tests/test_against_libraries.py`` checks it on a GPT-2).
    """
    ids = _check_prompt(ids, max_new_tokens)
    if num_beams < 1:
        raise ValueError(f"num_beams must be at least 1, got {num_beams}")
    device = next(model.parameters()).device
    beams, scores = ids.to(device)[None], torch.zeros(1, device=device)
    with evaluating(model):
        for _ in range(max_new_tokens):
            logp = next_logits(model, beams).log_softmax(dim=-1)  # [beams, V]
            vocab = logp.shape[-1]
            top = (scores[:, None] + logp).flatten().topk(min(num_beams, logp.numel()))
            beams = torch.cat([beams[top.indices // vocab], (top.indices % vocab)[:, None]], dim=1)
            scores = top.values
    return beams[0].cpu()


SAMPLING_SETTINGS = ("temperature", "top_k", "top_p")


def generate(
    model: nn.Module, ids: torch.Tensor, max_new_tokens: int, *, do_sample: bool = False, num_beams: int = 1,
    temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
    repetition_penalty: float = 1.0, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One front door, with Hugging Face's argument names: greedy, beam search or sampling.

    ``do_sample=False`` is greedy (or beam search with ``num_beams > 1``);
    ``do_sample=True`` samples with ``temperature``, ``top_k``, ``top_p``.
    Passing a sampling setting without ``do_sample=True`` raises ``ValueError``:
    Hugging Face's ``generate`` ignores it (with a warning that is easy to
    miss), and the text silently stays greedy (notebook 06 shows it).
    """
    given = [name for name, v in zip(SAMPLING_SETTINGS, (temperature, top_k, top_p), strict=True) if v is not None]
    if not do_sample and given:
        raise ValueError(f"{', '.join(given)} only apply when sampling: pass do_sample=True, or drop them "
                         "(greedy and beam search would silently ignore them)")
    if do_sample and num_beams > 1:
        raise ValueError("beam search with sampling is not supported here: use num_beams=1 with do_sample=True")
    if do_sample:
        return sample(model, ids, max_new_tokens, 1.0 if temperature is None else temperature, top_k, top_p,
                      repetition_penalty, generator)
    if num_beams > 1:
        if repetition_penalty != 1.0:
            raise ValueError("repetition_penalty is not supported with beam search here")
        return beam_search(model, ids, max_new_tokens, num_beams)
    return greedy(model, ids, max_new_tokens, repetition_penalty)


def continuation_log_probs(model: nn.Module, ids: torch.Tensor, start: int) -> torch.Tensor:
    """``log p(ids[t] | context)`` for ``t = start, ..., len(ids) - 1``: ``[len(ids) - start]``, in nats.

    The context of ``ids[t]`` is the ``block_size`` tokens before it (all of
    them if fewer), exactly what the model saw when it generated ``ids[t]``.
    Longer texts are scored window by window, in batches.
    """
    ids = _check_prompt(ids, 0)
    if not 1 <= start < len(ids):
        raise ValueError(f"start must be in 1..{len(ids) - 1} (the first token has no context), got {start}")
    block = _block_size(model) or len(ids)
    ids = ids.to(next(model.parameters()).device)
    prefix = min(len(ids) - 1, block)  # positions 0..prefix-1 predict tokens 1..prefix with their full past
    with evaluating(model):
        parts = [text.token_log_probs(logits_of(model, ids[None, :prefix])[0], ids[1:prefix + 1])]
        if len(ids) - 1 > block:  # token t > block: the window ids[t - block : t], last position
            wins = ids.unfold(0, block, 1)[1:len(ids) - block]
            for chunk in range(0, len(wins), 256):
                w = wins[chunk:chunk + 256]
                parts.append(text.token_log_probs(logits_of(model, w)[:, -1], ids[block + 1 + chunk:][:len(w)]))
    return torch.cat(parts)[start - 1:].cpu()
