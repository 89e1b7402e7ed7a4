"""What every training loop of the course shares: evaluation mode, AdamW's groups, the learning-rate schedule.

:func:`evaluating` is the one way the course switches a model to evaluation
mode (no dropout, no gradients) and back. :func:`lr_at` is the one schedule:
linear warm-up, an optional hold, then a cosine or linear decay to ``min_lr``
(notebook 05 plots it; 06's GPT-2 and the shipped models use it). No topic
module is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode and without gradients inside the block; its mode is restored after, even on error."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def adamw(
    model: nn.Module, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.99),
    no_decay: tuple[str, ...] = (), fused: bool = False,
) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices only, as in nanoGPT.

    Biases and layer-norm gains (the parameters with fewer than two
    dimensions), and any parameter whose name contains one of ``no_decay``
    (GPT-2's position table ``"wpe"``), are not decayed. A tied weight counts
    once. ``fused`` asks for the one-kernel update where the device and torch
    have it (on a 2-core CPU it saved about 3 ms of an 85 ms step, and its
    first use imports ``torch._dynamo``, which takes seconds), else the usual one.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decays = [p.dim() >= 2 and not any(s in n for s in no_decay) for n, p in named]
    groups = [{"params": [p for (_, p), d in zip(named, decays, strict=True) if d], "weight_decay": weight_decay},
              {"params": [p for (_, p), d in zip(named, decays, strict=True) if not d], "weight_decay": 0.0}]
    if fused:
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)
        except (RuntimeError, TypeError):  # a device or an older torch without the fused kernel
            pass
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def lr_at(
    step: int, *, lr: float, min_lr: float, warmup: int, steps: int, decay_steps: int | None = None,
    shape: str = "cosine", done: float | None = None,
) -> float:
    """The learning rate of step ``step`` (0-based).

    Linear warm-up over ``warmup`` steps (``lr * (step + 1) / (warmup + 1)``),
    then ``lr`` held until the last ``decay_steps`` steps (all the steps after
    the warm-up when ``None``), which decay to ``min_lr`` along a ``"cosine"``
    or a ``"linear"`` ramp. ``done``, a share of the run already used up (a time
    budget), moves the decay on when it is ahead of the steps, so a run cut
    short still ends at the small rate.
    """
    if shape not in ("cosine", "linear"):
        raise ValueError(f"shape must be 'cosine' or 'linear', got {shape!r}")
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    decay_start = warmup if decay_steps is None else max(warmup, steps - decay_steps)
    t = (step - decay_start) / max(1, steps - decay_start) if step >= decay_start else 0.0
    if done is not None:
        t = max(t, done)
    t = min(1.0, t)
    if shape == "cosine":
        return min_lr + 0.5 * (1 + math.cos(math.pi * t)) * (lr - min_lr)
    return lr + t * (min_lr - lr)
