"""A character-level GPT in one readable file, in the spirit of nanoGPT's ``model.py`` (notebook 04).

Taught in notebook 04:

- section 1, language modelling: :func:`char_data` (Tiny Shakespeare, 90/10
  split, the 65 characters as tokens), :func:`get_batch`, :func:`evaluate`
  (the loss in nats per character on a whole split);
- section 2, the transformer: :func:`causal_mask`, :func:`attention`
  (scaled dot-product attention written out), :class:`CausalSelfAttention`
  (heads, with PyTorch's fused kernel), :class:`MLP`, :class:`Block` (pre-norm,
  residual), :class:`GPT` (token and position embeddings, N(0, 0.02) init) and
  :func:`attention_maps` (the weights a trained head puts on a line of text);
- section 3, training: :class:`Recipe` (batch, learning-rate schedule,
  optimiser), :data:`RECIPES`, :func:`make_optimizer`, :func:`lr_at`,
  :func:`train_step` and :func:`fit` (train/val curves);
- section 4: :func:`generate` (sampling with the shared
  :func:`course_utils.text.sample_logits`; more strategies in
  :mod:`course_utils.decoding`);
- section 6: :func:`train_gpt`, what ``python -m course_utils.train gpt`` runs,
  data-parallel under ``torchrun`` (gloo on CPUs, NCCL on GPUs), and
  :func:`bench`, ``--bench``: seconds to reach 1.88 nats/char, beside
  nanoGPT's CPU recipe run in the same process.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import text
from course_utils.checkpoints import (
    make_config,
    register_model,
    require_multiple,
    require_positive,
    require_rate,
    save_checkpoint,
)
from course_utils.progress import TimeBudget, progress
from course_utils.runtime import describe_hardware, get_device, seed_everything

CHECKPOINT_NAME = "char_gpt"
#: The bound notebook 04 asserts on the shipped model's validation loss: the CPU ship's bound (30 minutes of a
#: 2-core CPU); the 1.55 target needs the ``gpu`` recipe.
SHIPPED_MAX_NATS_PER_CHAR = 1.65
BENCH_TARGET = 1.88  # nats/char: nanoGPT's CPU recipe ends at 1.886 (val, 2,000 steps)
CHECK_WINDOWS = 200  # the card's quick check: the loss on 200 evenly spaced validation windows

# --- data (section 1) ------------------------------------------------------------------------


@dataclass(frozen=True)
class CharData:
    """A text as character indices: the vocabulary, and the training and validation parts."""

    vocab: text.Vocab
    train: torch.Tensor
    val: torch.Tensor


def char_data(corpus: str | None = None, val_fraction: float = 0.1, limit: int | None = None) -> CharData:
    """Tiny Shakespeare (or ``corpus``) as indices: the first 90% for training, the last 10% for validation.

    The vocabulary is every character of the whole text (65 for Tiny
    Shakespeare), as in nanoGPT's ``shakespeare_char``: 1,003,854 training and
    111,540 validation characters. ``limit`` keeps only the first ``limit``
    training characters (quick tests); validation is never cut.
    """
    if corpus is None:
        from course_utils.data import load_text

        corpus = load_text("tinyshakespeare")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    vocab = text.build_vocab(corpus)
    ids = torch.tensor(vocab.encode(corpus), dtype=torch.long)
    cut = int(len(ids) * (1 - val_fraction))
    train = ids[:cut] if limit is None else ids[:min(cut, limit)]
    return CharData(vocab, train, ids[cut:])


def get_batch(
    data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows: inputs ``x`` ``[B, T]`` and targets ``y``, ``x`` shifted by one.

    One gather from the tensor in memory (no per-window copies): row ``b`` is
    ``data[i : i + T]`` and its targets ``data[i + 1 : i + T + 1]``.
    """
    if len(data) <= block_size:
        raise ValueError(f"the data ({len(data)} tokens) must be longer than block_size={block_size}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    chunk = data[starts[:, None] + torch.arange(block_size + 1)]
    return chunk[:, :-1], chunk[:, 1:]


def windows(data: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The split cut into consecutive, non-overlapping windows ``[N, T]`` and their targets."""
    n = (len(data) - 1) // block_size
    if n < 1:
        raise ValueError(f"the data ({len(data)} tokens) is shorter than one window of {block_size} + 1")
    return data[:n * block_size].view(n, block_size), data[1:n * block_size + 1].view(n, block_size)


# --- the model (section 2) -----------------------------------------------------------------------


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT. The defaults are nanoGPT's CPU recipe for Tiny Shakespeare (0.8M parameters).

    ``bias`` adds biases to the linear layers and layer norms (GPT-2 has them;
    without is a little faster). ``tie_weights`` shares the token embedding
    with the output layer (GPT-2, nanoGPT); the course's checkpoints keep them
    apart, because safetensors stores no shared tensors.
    """

    vocab_size: int = 65  # tokens the model reads and predicts (Tiny Shakespeare's characters)
    block_size: int = 64  # the context: how many tokens back attention can look
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block; each gets n_embd / n_head channels
    n_embd: int = 128  # the width of every token's vector
    dropout: float = 0.0  # on attention weights and residual branches while training
    bias: bool = False
    tie_weights: bool = False

    def __post_init__(self) -> None:
        require_positive(self, "vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        require_multiple(self, "n_embd", of="n_head")
        require_rate(self, "dropout")


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``[T, T]`` booleans, True where query ``i`` may look at key ``j``: ``j <= i`` (the past and itself)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention written out: ``softmax(q k^T / sqrt(d) + mask) v`` and the weights.

    ``q``, ``k``, ``v`` are ``[..., T, d]``; ``mask`` (booleans, True = may
    attend) broadcasts to ``[..., T, T]``. Dividing by ``sqrt(d)`` keeps the
    scores' variance at 1 for unit-variance queries and keys, so the softmax
    does not saturate as ``d`` grows (section 2).
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one linear layer makes every head's q, k, v; one mixes the heads.

    ``forward`` uses PyTorch's fused ``F.scaled_dot_product_attention``;
    with ``need_weights=True`` it runs :func:`attention` instead and returns the
    ``[B, heads, T, T]`` weights too (the two agree to float rounding).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> Any:
        B, T, C = x.shape
        # [B, T, 3C] -> three [B, heads, T, head size]: every head attends independently
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.c_attn(x).split(C, dim=2))
        if need_weights:
            y, weights = attention(q, k, v, causal_mask(T, x.device))
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))  # heads side by side, mixed
        return (y, weights) if need_weights else y


class MLP(nn.Module):
    """The position-wise feed-forward network: ``C -> 4C -> GELU -> C``, the same for every position."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """A transformer block, pre-norm: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``.

    The residual stream ``x`` passes through unchanged; each sub-layer only adds
    to it, so gradients reach the first layers directly (section 2).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


@register_model
class GPT(nn.Module):
    """A decoder-only transformer: embeddings, ``n_layer`` blocks, a final layer norm, logits (section 2).

    ``model(idx)`` returns ``(logits [B, T, V], None)``; ``model(idx, targets)``
    returns ``(logits, loss)``, the mean cross-entropy in nats per token. The
    parameter names are nanoGPT's, so its checkpoints load into this class.
    Every weight starts N(0, 0.02) (embeddings included: PyTorch's default
    N(0, 1) for embeddings left the model noticeably worse after 2,000 steps in
    the course's runs), the residual projections N(0, 0.02 / sqrt(2 n_layer)) (GPT-2).
    """

    def __init__(self, config: GPTConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = c = make_config(GPTConfig, config, overrides)
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c.vocab_size, c.n_embd),
            wpe=nn.Embedding(c.block_size, c.n_embd),
            drop=nn.Dropout(c.dropout),
            h=nn.ModuleList([Block(c) for _ in range(c.n_layer)]),
            ln_f=nn.LayerNorm(c.n_embd, bias=c.bias),
        ))
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_weights:
            self.transformer.wte.weight = self.lm_head.weight
        self.apply(init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layer))

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings: ``[B, T]`` indices -> ``[B, T, C]``."""
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size={self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        return self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        x = self.embed(idx)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def init_weights(module: nn.Module) -> None:
    """GPT-2's initialisation (``model.apply(init_weights)``): linear and embedding weights N(0, 0.02), biases 0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


@torch.no_grad()
def attention_maps(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """The attention weights of every head for ``idx`` ``[B, T]``: ``[B, layers, heads, T, T]`` (section 3)."""
    x, maps = model.embed(idx), []
    for block in model.transformer.h:
        y, weights = block.attn(block.ln_1(x), need_weights=True)
        maps.append(weights)
        x = x + y
        x = x + block.mlp(block.ln_2(x))
    return torch.stack(maps, dim=1)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode and without gradients inside the block; its mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def evaluate(
    model: GPT, data: torch.Tensor, batch_size: int = 256, max_windows: int | None = None,
    shard: tuple[int, int] = (0, 1),
) -> float:
    """The mean loss in nats per character over ``data`` cut into windows of the model's block size.

    Every position of every window counts, so each character is predicted from
    0 to ``block_size - 1`` characters of context, as in training and in
    nanoGPT's estimate, but over the whole split (deterministic) rather than
    over random batches. ``max_windows`` takes that many, evenly spaced;
    ``shard = (rank, world)`` evaluates every ``world``-th window and all-reduces
    the sum (data-parallel runs).
    """
    xs, ys = windows(data, model.config.block_size)
    if max_windows is not None and max_windows < len(xs):
        keep = torch.linspace(0, len(xs) - 1, max_windows).long()
        xs, ys = xs[keep], ys[keep]
    rank, world = shard
    xs, ys = xs[rank::world], ys[rank::world]
    device = next(model.parameters()).device
    total = torch.zeros(2, dtype=torch.float64, device=device)  # sum of losses, number of predictions
    with evaluating(model):
        for start in range(0, len(xs), batch_size):
            x, y = xs[start:start + batch_size].to(device), ys[start:start + batch_size].to(device)
            logits, _ = model(x)
            total[0] += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").double()
            total[1] += y.numel()
    if world > 1:
        torch.distributed.all_reduce(total)
    return float(total[0] / total[1])


@torch.no_grad()
def generate(
    model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to ``idx`` ``[B, T]`` (section 4), in eval mode.

    Each step feeds the last ``block_size`` tokens, and draws the next one with
    :func:`course_utils.text.sample_logits` (temperature, top-k, top-p); a
    seeded CPU ``generator`` gives the same text on every device.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be non-negative, got {max_new_tokens}")
    if idx.ndim != 2 or idx.shape[1] < 1:
        raise ValueError(f"idx must be [B, T] with T >= 1 (a prompt of at least one token), got {tuple(idx.shape)}")
    with evaluating(model):
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -model.config.block_size:])
            nxt = text.sample_logits(logits[:, -1], temperature, top_k, top_p, generator)
            idx = torch.cat([idx, nxt[:, None]], dim=1)
    return idx


# --- training (section 3) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """A model size and how to train it: batch, steps, the learning-rate schedule, AdamW's settings.

    The schedule warms up linearly for ``warmup`` steps, holds ``lr``, and then
    decays to ``min_lr`` over the last ``decay_steps`` steps, linearly
    (``schedule="linear"``: warmup-stable-decay) or along a cosine that starts
    right after the warm-up (``"cosine"``, nanoGPT's).
    """

    model: GPTConfig = GPTConfig()
    batch_size: int = 12
    steps: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    decay_steps: int = 1900
    schedule: str = "cosine"
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        require_positive(self, "batch_size", "steps", "warmup", "decay_steps", allow_zero=("warmup",))
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"schedule must be 'cosine' or 'linear', got {self.schedule!r}")
        if self.decay_steps + self.warmup > self.steps:
            raise ValueError(f"warmup ({self.warmup}) + decay_steps ({self.decay_steps}) > steps ({self.steps})")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.model.block_size

    def describe(self) -> str:
        m = self.model
        return (f"{m.n_layer} layers x {m.n_head} heads x {m.n_embd} wide, block {m.block_size}; "
                f"batch {self.batch_size}, {self.steps:,} steps, lr {self.lr:g} ({self.schedule}, warm-up "
                f"{self.warmup}, decay over {self.decay_steps} to {self.min_lr:g})")


#: nanoGPT's published CPU recipe for Tiny Shakespeare (the reference of ``--bench``).
NANOGPT_CPU = Recipe(GPTConfig(tie_weights=True), batch_size=12, steps=2000, lr=1e-3, min_lr=1e-4,
                     warmup=100, decay_steps=1900, schedule="cosine")
#: The course's recipes: ``ci``/``cpu``/``gpu`` are notebook 04's profiles, ``ship`` the shipped model.
#: ``ci`` and ``cpu`` use a model smaller than nanoGPT's (0.24M parameters, not 0.8M) with a larger batch and
#: learning rate: for a minute of CPU, a smaller model shown more text learns more (`train gpt --bench` times it).
#: ``ship`` is nanoGPT's CPU model with a context of 128 characters (0.8M parameters): for half an hour of one
#: CPU thread it reads about ten times more text than the 2M-parameter 6 x 168 ``gpu`` model would.
SMALL = GPTConfig(block_size=64, n_layer=2, n_head=4, n_embd=96)
RECIPES: dict[str, Recipe] = {
    "ci": Recipe(SMALL, batch_size=64, steps=320, lr=6e-3, min_lr=1e-4, warmup=30, decay_steps=160,
                 schedule="linear"),
    "cpu": Recipe(SMALL, batch_size=64, steps=480, lr=6e-3, min_lr=1e-4, warmup=30, decay_steps=240,
                  schedule="linear"),
    "gpu": Recipe(GPTConfig(block_size=128, n_layer=6, n_head=6, n_embd=168), batch_size=64, steps=3000, lr=2e-3,
                  min_lr=1e-4, warmup=100, decay_steps=750, schedule="linear"),
    "ship": Recipe(GPTConfig(block_size=128, n_layer=4, n_head=4, n_embd=128), batch_size=32, steps=2400,
                   lr=3e-3, min_lr=1e-4, warmup=60, decay_steps=720, schedule="linear"),
    "test": Recipe(GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=32), batch_size=8, steps=4, lr=1e-3,
                   min_lr=1e-4, warmup=1, decay_steps=2, schedule="linear"),
}


def lr_at(recipe: Recipe, step: int) -> float:
    """The learning rate of step ``step`` (0-based) under ``recipe``'s schedule."""
    r = recipe
    if step < r.warmup:
        return r.lr * (step + 1) / (r.warmup + 1)
    decay_start = r.warmup if r.schedule == "cosine" else r.steps - r.decay_steps
    if step < decay_start:
        return r.lr
    progress_ = min(1.0, (step - decay_start) / max(1, r.steps - decay_start))
    if r.schedule == "cosine":
        return r.min_lr + 0.5 * (1 + math.cos(math.pi * progress_)) * (r.lr - r.min_lr)
    return r.lr + progress_ * (r.min_lr - r.lr)


def make_optimizer(model: nn.Module, recipe: Recipe, fused: bool = False) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (not on biases and layer-norm gains), as in nanoGPT.

    ``fused`` uses one kernel for the whole update (where the device and torch
    support it). On a 2-core CPU it saved about 3 ms of an 85 ms step
    (measured for this course), and its first use imports ``torch._dynamo``
    (seconds), so it is off by default.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": recipe.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    kwargs = dict(lr=recipe.lr, betas=(0.9, recipe.beta2))
    if fused:
        try:
            return torch.optim.AdamW(groups, fused=True, **kwargs)
        except (RuntimeError, TypeError):  # a device or an older torch without the fused kernel
            pass
    return torch.optim.AdamW(groups, **kwargs)


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, lr: float,
    grad_clip: float = 1.0,
) -> float:
    """One update: the loss on ``(x, y)``, its gradient (clipped to norm ``grad_clip``), an AdamW step at ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


@dataclass
class History:
    """What :func:`fit` records: the training loss per step, and evaluations (step, seconds, train, val)."""

    loss: list[float]
    eval_step: list[int]
    eval_seconds: list[float]
    train: list[float]
    val: list[float]
    lr: list[float] = field(default_factory=list)  # per step, recorded when the wall clock drives the schedule

    def as_dict(self) -> dict[str, list]:
        return asdict(self)


def fit(
    model: GPT, data: CharData, recipe: Recipe, generator: torch.Generator, eval_every: int | None = None,
    eval_windows: int | None = 200, max_minutes: float | None = None, desc: str = "GPT",
    rank: int = 0, world: int = 1, ddp_model: nn.Module | None = None, on_eval: Callable[..., bool] | None = None,
    clock_schedule: bool = False,
) -> History:
    """Train ``model`` with ``recipe`` on random batches of ``data.train``; returns the :class:`History`.

    Every ``eval_every`` steps (and at the end) the loss on ``eval_windows``
    evenly spaced windows of each split is recorded, with the training
    seconds so far (the clock stops while evaluating). ``max_minutes`` stops
    at the next evaluation past that time. ``on_eval(step, seconds, val)``
    returning True stops too (the benchmark's target). In a data-parallel run
    (``world`` > 1) every process draws the same global batch from the same
    seeded ``generator`` and trains on its slice ``rank``; ``ddp_model`` wraps
    ``model`` to average the gradients. ``clock_schedule`` (with
    ``max_minutes``) drives the learning-rate schedule by the wall clock as
    well as by the step: a step is placed at ``max(step, share of the time
    spent x steps)``, so a run on a machine slower than planned still warms
    up, holds and decays within its time, and stops when the decay ends.
    """
    if recipe.batch_size % world:
        raise ValueError(f"batch_size={recipe.batch_size} is not a multiple of the {world} processes")
    net = ddp_model or model
    optimizer = make_optimizer(model, recipe)
    eval_every = eval_every or max(1, recipe.steps // 10)
    history, budget = History([], [], [], [], []), TimeBudget(max_minutes)
    per_rank = recipe.batch_size // world
    device = next(model.parameters()).device
    seconds, bar = 0.0, progress(total=recipe.steps, desc=desc, **({"disable": True} if rank else {}))
    model.train()
    clock = clock_schedule and max_minutes is not None
    for step in range(recipe.steps):
        start = time.perf_counter()
        x, y = get_batch(data.train, recipe.batch_size, recipe.model.block_size, generator)
        x, y = x[rank * per_rank:(rank + 1) * per_rank].to(device), y[rank * per_rank:(rank + 1) * per_rank].to(device)
        at = _clock_step(step, recipe.steps, budget, world, device) if clock else step
        if clock:
            history.lr.append(lr_at(recipe, at))
        loss = train_step(net, optimizer, x, y, lr_at(recipe, at), recipe.grad_clip)
        if world > 1:  # log the loss of the global batch: the mean of the processes' halves
            mean = torch.tensor(loss / world, device=device)
            torch.distributed.all_reduce(mean)
            loss = mean.item()
        history.loss.append(round(loss, 6))
        seconds += time.perf_counter() - start
        bar.update(1)
        last = step + 1 == recipe.steps or at + 1 >= recipe.steps
        if (step + 1) % eval_every == 0 or last:
            shard = (rank, world)
            history.eval_step.append(step + 1)
            history.eval_seconds.append(round(seconds, 2))
            history.train.append(round(evaluate(model, data.train, max_windows=eval_windows, shard=shard), 4))
            history.val.append(round(evaluate(model, data.val, max_windows=eval_windows, shard=shard), 4))
            bar.set_postfix(train=f"{history.train[-1]:.3f}", val=f"{history.val[-1]:.3f}")
            stop = bool(on_eval and on_eval(step + 1, seconds, history.val[-1])) or budget.spent()
            if world > 1:  # every process must stop at the same step, or the others wait forever
                flag = torch.tensor(float(stop), device=device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                stop = bool(flag.item())
            if stop or last:
                break
    bar.close()
    model.eval()
    return history


def _clock_step(step: int, steps: int, budget: TimeBudget, world: int, device: torch.device) -> int:
    """The step of the schedule that ``step`` takes under a wall-clock schedule (the same in every process)."""
    at = max(step, min(steps - 1, int(budget.elapsed() / max(budget.seconds, 1e-9) * steps)))
    if world > 1:
        shared = torch.tensor(float(at), device=device)
        torch.distributed.all_reduce(shared, op=torch.distributed.ReduceOp.MAX)
        at = int(shared.item())
    return at


def with_steps(recipe: Recipe, steps: int) -> Recipe:
    """``recipe`` shortened or lengthened to ``steps``: the decay scaled alike, the warm-up never longer."""
    if steps < 2:
        raise ValueError(f"a run needs at least 2 steps, got {steps}")
    warmup = min(recipe.warmup, round(recipe.warmup * steps / recipe.steps))
    decay = max(1, min(steps - warmup, round(recipe.decay_steps * steps / recipe.steps)))
    return replace(recipe, steps=steps, warmup=warmup, decay_steps=decay)


def time_budget_recipe(recipe: Recipe, seconds_per_step: float, max_minutes: float) -> Recipe:
    """``recipe`` with as many steps as fit in ``max_minutes`` at the measured speed (:func:`with_steps`)."""
    return with_steps(recipe, max(2, int(max_minutes * 60 / seconds_per_step)))


def measure_step_seconds(recipe: Recipe, data: CharData, steps: int = 20, seed: int = 0, wall: bool = False) -> float:
    """Seconds per training step of ``recipe`` on this machine (a few steps of a throw-away model).

    On a CPU the steps are timed in processor time per torch thread unless
    ``wall``: on a machine shared with other jobs a time budget then buys the
    steps it would buy on an unshared one (and takes longer to run). With
    ``wall`` the figure is wall seconds under the present load (what
    ``--max-minutes`` uses, so that a run ends on time).
    """
    device = get_device()
    model = GPT(recipe.model).to(device)
    optimizer = make_optimizer(model, recipe)
    g = torch.Generator().manual_seed(seed)
    wall = wall or device.type != "cpu"
    clock = time.perf_counter if wall else time.process_time
    for i in range(steps + 3):
        if i == 3:  # the first steps warm up the allocator and the thread pool
            start = clock()
        x, y = get_batch(data.train, recipe.batch_size, recipe.model.block_size, g)
        train_step(model, optimizer, x.to(device), y.to(device), recipe.lr)
    if device.type == "cuda":
        torch.cuda.synchronize()
    per_step = (clock() - start) / steps
    return per_step if wall else per_step / torch.get_num_threads()


# --- the shipped model, under torchrun too (section 6) ------------------------------------------------


def distributed_setup() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; under ``torchrun`` the process group is started (NCCL on GPUs, gloo else)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, get_device()
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


#: With ``--max-minutes`` the training steps are fitted into this share of the time (the curve's
#: evaluations take the rest); past the whole time the run stops at the next evaluation and saves what it has.
TRAIN_SHARE = 0.85


def train_gpt(
    out: Path, recipe: str | Recipe = "ship", steps: int | None = None, seed: int = 0, limit: int | None = None,
    max_minutes: float | None = None, eval_windows: int | None = 400, command: str | None = None,
) -> dict[str, Any]:
    """Train the char GPT and write ``char_gpt.safetensors`` + card to ``out`` (rank 0); return the card.

    ``recipe`` is a name of :data:`RECIPES` or a :class:`Recipe`; ``steps``
    overrides its length (the decay is scaled alike); ``max_minutes`` fits the
    steps into that time at the speed measured at the start (the card records
    the steps: ``--steps N`` repeats the run). Under ``torchrun`` the run is
    data-parallel with the recipe's batch as the global batch. The card holds
    the full-split validation loss, the train/val curve and the seconds.
    """
    out = Path(out)
    rank, world, device = distributed_setup()
    name = recipe if isinstance(recipe, str) else "custom"
    recipe = RECIPES[recipe] if isinstance(recipe, str) else recipe
    data = char_data(limit=limit)
    recipe = replace(recipe, model=replace(recipe.model, vocab_size=len(data.vocab)))
    if steps is not None:
        recipe = with_steps(recipe, steps)
    if max_minutes is not None:  # the steps fill TRAIN_SHARE of the time; the curve's evaluations take the rest
        per_step = measure_step_seconds(recipe, data, wall=True) if world == 1 else \
            _broadcast_seconds(recipe, data, rank)
        recipe = time_budget_recipe(recipe, per_step, max_minutes * TRAIN_SHARE)
    generator = seed_everything(seed)
    model = GPT(recipe.model).to(device)
    ddp = None
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    history = fit(model, data, recipe, generator, eval_every=max(1, recipe.steps // 40), eval_windows=eval_windows,
                  rank=rank, world=world, ddp_model=ddp, desc=f"char GPT ({name})", max_minutes=max_minutes,
                  clock_schedule=max_minutes is not None)
    card: dict[str, Any] = {}
    if rank == 0:
        command = command or _command(name, recipe.steps, seed, world, limit)
        card = _card(model.cpu(), recipe, name, data, history, seed, world, device, command, eval_windows)
        save_checkpoint(model.half(), out / CHECKPOINT_NAME, card)  # float16 on disk: half the size
        model.float()
        print(f"char GPT: val {card['val_loss']:.4f} nats/char after {card['training']['steps']:,} steps, "
              f"{card['seconds']:.0f} s of training -> {out}")
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return card


def _broadcast_seconds(recipe: Recipe, data: CharData, rank: int) -> float:
    """Rank 0 measures the speed; every process gets the same figure (and hence the same steps)."""
    seconds = torch.tensor([measure_step_seconds(recipe, data, wall=True) if rank == 0 else 0.0],
                           dtype=torch.float64)
    torch.distributed.broadcast(seconds, src=0)
    return float(seconds)


def _card(
    model: GPT, recipe: Recipe, name: str, data: CharData, history: History, seed: int, world: int,
    device: torch.device, command: str, eval_windows: int | None,
) -> dict[str, Any]:
    # the card's loss is that of the weights as stored (float16), measured on the whole validation split
    stored = GPT(model.config)
    stored.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    val, val_stored = evaluate(model, data.val), evaluate(stored, data.val)
    steps = history.eval_step[-1] if history.eval_step else recipe.steps
    return {
        "task": "character-level GPT for Tiny Shakespeare (notebook 04)",
        "data": f"Tiny Shakespeare, first 90% for training ({len(data.train):,} characters), last 10% for "
                f"validation ({len(data.val):,}); {len(data.vocab)} characters",
        "vocab": "".join(data.vocab.itos),
        "training": {"recipe": name, **asdict(replace(recipe, steps=steps)), "planned_steps": recipe.steps,
                     "seed": seed, "processes": world, "threads": torch.get_num_threads(),
                     "tokens": steps * recipe.tokens_per_step, "optimizer": "AdamW"},
        "val_loss": round(val_stored, 4),
        "val_loss_float32": round(val, 4),
        "val_check": {"windows": CHECK_WINDOWS,
                      "value": round(evaluate(stored, data.val, max_windows=CHECK_WINDOWS), 5)},
        "val_bits_per_char": round(val_stored / math.log(2), 4),
        "val_protocol": f"mean cross-entropy (nats/char) over the whole validation split cut into windows of "
                        f"{model.config.block_size} characters",
        "curve": {**history.as_dict(), "windows": f"{eval_windows or 'all'} evenly spaced windows of each split"},
        "seconds": history.eval_seconds[-1] if history.eval_seconds else None,
        "seconds_note": "training steps only; the evaluations for the curve are not counted",
        "schedule_note": ("--max-minutes: the wall clock drove the schedule (curve.lr, per step); on a machine as fast "
                          "as planned it is the recipe's" if history.lr else "the recipe's schedule, by step"),
        "hardware": describe_hardware(device) + (f", {world} processes" if world > 1 else ""),
        "stored_as": "float16 (loaded into float32)",
        "command": command,
    }


def _command(recipe: str, steps: int, seed: int, world: int, limit: int | None) -> str:
    """The command that repeats a run (the card's ``command``)."""
    launcher = f"torchrun --standalone --nproc_per_node={world}" if world > 1 else "python"
    extra = f" --limit {limit}" if limit else ""
    return f"{launcher} -m course_utils.train gpt --recipe {recipe} --steps {steps} --seed {seed}{extra}"


# --- the speed benchmark (section 6) ----------------------------------------------------------------


def bench(target: float = BENCH_TARGET, recipe: str | Recipe = "cpu", reference: Recipe | None = NANOGPT_CPU,
          seed: int = 0, slice_seconds: float = 2.0, data: CharData | None = None) -> dict[str, Any]:
    """Training seconds to reach ``target`` nats/char (whole validation split) with ``recipe``, beside nanoGPT's.

    The reference is nanoGPT's CPU recipe (:data:`NANOGPT_CPU`: 4 layers, 4
    heads, 128 wide, block 64, batch 12, 2,000 steps, lr 1e-3, cosine, tied
    embeddings), re-implemented here with its own data pipeline costs (a
    per-step memory map) and its evaluation (20 random batches of each split
    every 250 steps). The two runs are interleaved in slices of
    ``slice_seconds`` in this one process, so that whatever else runs on the
    machine slows both alike; only the ratio means anything across machines.
    The clocks count training steps only (evaluation paused, as in the
    modded-nanoGPT speed runs); the reference's wall time with its own
    evaluations is reported too.
    """
    data = data or char_data()
    ours = _Runner(RECIPES[recipe] if isinstance(recipe, str) else recipe, data, seed, target)
    runners = [ours] + ([_Runner(reference, data, seed, None, nanogpt=True)] if reference else [])
    while not all(r.done for r in runners):
        for r in runners:
            r.run_for(slice_seconds)
    result = {"target": target, "recipe": ours.recipe.describe(), "seconds": ours.reached_at,
              "steps": ours.reached_step, "val": ours.val_at_stop, "threads": torch.get_num_threads(),
              "hardware": describe_hardware(torch.device("cpu"))}
    if reference:
        ref = runners[1]
        result["reference"] = {"recipe": "nanoGPT CPU: " + reference.describe(), "steps": reference.steps,
                               "train_seconds": ref.seconds,
                               "wall_seconds": ref.seconds + ref.own_eval_seconds, "val": ref.val_at_stop,
                               "val_nanogpt_estimate": ref.estimate}
        result["ratio"] = None if ours.reached_at is None else ours.reached_at / ref.seconds
    return result


class _Runner:
    """One training run of :func:`bench`, advanced a slice of time at a time."""

    def __init__(self, recipe: Recipe, data: CharData, seed: int, target: float | None, nanogpt: bool = False):
        self.recipe, self.data, self.target, self.nanogpt = recipe, data, target, nanogpt
        torch.manual_seed(seed)
        self.model = GPT(recipe.model)
        self.optimizer = make_optimizer(self.model, recipe)  # nanoGPT fuses AdamW on CUDA only
        self.generator = torch.Generator().manual_seed(seed)
        self.step, self.seconds, self.own_eval_seconds, self.done = 0, 0.0, 0.0, False
        self.reached_at = self.reached_step = self.val_at_stop = self.estimate = None
        self.eval_every = 250 if nanogpt else max(10, recipe.steps // 40)  # ours: the whole split, clock paused
        if nanogpt:  # nanoGPT reads each batch from a numpy memory map of uint16 (its train.bin)
            import numpy as np

            self.path = Path(tempfile.gettempdir()) / f"course_bench_train_{os.getpid()}.bin"
            data.train.numpy().astype(np.uint16).tofile(self.path)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.recipe
        if not self.nanogpt:
            return get_batch(self.data.train, r.batch_size, r.model.block_size, self.generator)
        import numpy as np

        mm = np.memmap(self.path, dtype=np.uint16, mode="r")  # nanoGPT re-opens it every batch
        ix = torch.randint(len(mm) - r.model.block_size, (r.batch_size,), generator=self.generator)
        x = torch.stack([torch.from_numpy(mm[i:i + r.model.block_size].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(mm[i + 1:i + 1 + r.model.block_size].astype(np.int64)) for i in ix])
        return x, y

    def _nanogpt_estimate(self) -> float:
        start, losses = time.perf_counter(), []
        with evaluating(self.model):
            for split in (self.data.train, self.data.val):
                losses = [self.model(*get_batch(split, self.recipe.batch_size, self.recipe.model.block_size,
                                                self.generator))[1].item() for _ in range(20)]
        self.own_eval_seconds += time.perf_counter() - start
        return sum(losses) / len(losses)  # the val estimate (the last split)

    def run_for(self, budget: float) -> None:
        end = time.perf_counter() + budget
        while not self.done and time.perf_counter() < end:
            if self.nanogpt and self.step % self.eval_every == 0:
                self.estimate = self._nanogpt_estimate()
            start = time.perf_counter()
            x, y = self._batch()
            train_step(self.model, self.optimizer, x, y, lr_at(self.recipe, self.step), self.recipe.grad_clip)
            self.seconds += time.perf_counter() - start
            self.step += 1
            if self.step % self.eval_every == 0 or self.step == self.recipe.steps:
                self._check()

    def _check(self) -> None:
        last = self.step == self.recipe.steps
        if self.nanogpt and not last:
            return
        if self.nanogpt:
            self.estimate = self._nanogpt_estimate()
        val = evaluate(self.model, self.data.val)
        self.model.train()
        if self.target is not None and val <= self.target and self.reached_at is None:
            self.reached_at, self.reached_step = self.seconds, self.step
        if last or self.reached_at is not None:
            self.done, self.val_at_stop = True, round(val, 4)
            if self.nanogpt:
                self.path.unlink(missing_ok=True)


def print_bench(result: dict[str, Any], file: Any = sys.stdout) -> None:
    """The benchmark's result as a few lines of text."""
    print(f"course recipe: {result['recipe']}", file=file)
    if result["seconds"] is None:
        print(f"  did not reach {result['target']} nats/char (val {result['val']}) in its steps", file=file)
    else:
        print(f"  reached val {result['val']:.4f} <= {result['target']} at step {result['steps']}: "
              f"{result['seconds']:.1f} s of training", file=file)
    if "reference" in result:
        ref = result["reference"]
        print(f"reference: {ref['recipe']}", file=file)
        print(f"  {ref['steps']:,} steps: {ref['train_seconds']:.1f} s of training ({ref['wall_seconds']:.1f} s with "
              f"its own evaluations), val {ref['val']:.4f} (its 20-batch estimate {ref['val_nanogpt_estimate']:.4f})",
              file=file)
        if result["ratio"] is not None:
            print(f"ratio: {result['ratio']:.2f} x the reference's training time", file=file)
    print(f"on {result['hardware']}", file=file)
