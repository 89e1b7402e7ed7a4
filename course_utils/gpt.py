"""A character-level GPT, the model only, in one readable file in the spirit of nanoGPT's ``model.py`` (notebook 05).

Taught in notebook 05, section 2 (the transformer): :func:`causal_mask`,
:func:`attention` (scaled dot-product attention written out),
:class:`CausalSelfAttention` (heads, with PyTorch's fused kernel), :class:`MLP`,
:class:`Block` (pre-norm, residual) and :class:`GPT` (token and position
embeddings, N(0, 0.02) init); section 3: :func:`attention_maps` (the weights a
trained head puts on a line of text); section 4: :func:`generate` (sampling
through :func:`course_utils.decoding.sample`, the one sampling loop; more strategies in
:mod:`course_utils.decoding`).

Elsewhere: the data, the recipes and the training loop in
:mod:`course_utils.gpt_training`, data-parallel running under ``torchrun`` in
:mod:`course_utils.distributed`, the speed benchmark against nanoGPT in
:mod:`course_utils.benchmarks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import decoding
from course_utils.checkpoints import register_model
from course_utils.configs import make_config, require_multiple, require_positive, require_rate

# --- the model (section 2) -----------------------------------------------------------------------


GELU_APPROXIMATION = {"gelu": "none", "gelu_new": "tanh"}  # activation name -> F.gelu's ``approximate``


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT. The defaults are nanoGPT's CPU recipe for Tiny Shakespeare (0.8M parameters).

    ``bias`` adds biases to the linear layers and layer norms (GPT-2 has them;
    without is a little faster). ``tie_weights`` shares the token embedding
    with the output layer (GPT-2, nanoGPT); the course's checkpoints keep them
    apart, because safetensors stores no shared tensors. ``activation`` is the
    MLP's GELU: ``"gelu"`` (exact, PyTorch's default) or ``"gelu_new"`` (the tanh
    approximation that GPT-2 uses, Hugging Face's name). The three switches
    are what Hugging Face's GPT-2 weights need (``bias=True, tie_weights=True,
    activation="gelu_new"``; notebook 06 loads them).
    """

    vocab_size: int = 65  # tokens the model reads and predicts (Tiny Shakespeare's characters)
    block_size: int = 64  # the context: how many tokens back attention can look
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block; each gets n_embd / n_head channels
    n_embd: int = 128  # the width of every token's vector
    dropout: float = 0.0  # on attention weights and residual branches while training
    bias: bool = False
    tie_weights: bool = False
    activation: str = "gelu"

    def __post_init__(self) -> None:
        if self.activation not in GELU_APPROXIMATION:
            raise ValueError(f"activation must be one of {sorted(GELU_APPROXIMATION)}, got {self.activation!r}")
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
        self.approximate = GELU_APPROXIMATION[config.activation]
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


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
    Every weight starts N(0, 0.02) (embeddings included: with PyTorch's default
    N(0, 1) the embeddings would drown the blocks' first outputs, section 2.8),
    the residual projections N(0, 0.02 / sqrt(2 n_layer)): nanoGPT's form of the GPT-2
    paper's 1/sqrt(N) scaling, which GPT-2's released code does not apply (it
    starts its position embedding at N(0, 0.01), the rest at N(0, 0.02)).
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


# --- sampling (section 4) ------------------------------------------------------------------------------


def generate(
    model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
    top_p: float | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to ``idx`` ``[B, T]`` (section 4), on ``idx``'s device.

    nanoGPT's ``generate``, and the course's one sampling loop: :func:`course_utils.decoding.sample`
    (each step feeds the last ``block_size`` tokens and draws the next with
    :func:`course_utils.text.sample_logits`); a seeded CPU ``generator`` gives the same text on every device.
    """
    if idx.ndim != 2:
        raise ValueError(f"idx must be [B, T] (a batch of prompts), got {tuple(idx.shape)}")
    return decoding.sample(model, idx, max_new_tokens, temperature, top_k, top_p, generator=generator).to(idx.device)
