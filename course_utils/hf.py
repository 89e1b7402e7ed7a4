"""The Hugging Face workflow: a BPE tokenizer, a small GPT-2, training, saving, loading, generating (notebook 05).

Taught in notebook 05:

- section 1, tokenisation: :func:`train_bpe` (byte-level BPE with
  ``tokenizers``, wrapped as a ``transformers`` tokenizer), :func:`encode`,
  :func:`chars_per_token` and :func:`nats_per_char`, the conversion that puts
  a loss per BPE token beside notebook 04's loss per character;
- section 2, a GPT-2 of our own: :class:`LMRecipe` and :data:`RECIPES` (sizes
  and schedule), :func:`gpt2_config` (bos/eos/pad set inside the small
  vocabulary), :func:`make_gpt2`, :func:`train_lm` (AdamW, warm-up and cosine
  decay, a progress bar, train/val curves), :func:`evaluate_lm` (nats per
  token and per character on a whole split), :func:`save_hf` and
  :func:`load_hf` (``save_pretrained`` / ``from_pretrained``, safetensors only,
  checksums in a course card), :func:`quiet_hf` (no progress-bar or warning
  floods);
- section 3, the GPT-3 snippet corrected: :func:`hub_reachable` (fast, and
  ``False`` at once under ``HF_HUB_OFFLINE=1``), :func:`resolve_model` and
  :func:`run_snippet`;
- section 4: :func:`summarise`, a chat model through the same
  ``pipeline("text-generation")``;
- section 6: :func:`train_hf_gpt`, what ``python -m course_utils.train hf-gpt`` runs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from course_utils.checkpoints import (
    CARD_FORMAT,
    SHIPPED_DIR,
    CheckpointError,
    require_multiple,
    require_positive,
    require_rate,
)
from course_utils.data import sha256_of
from course_utils.progress import TimeBudget, progress
from course_utils.runtime import describe_hardware, get_device, seed_everything

HF_GPT_NAME = "hf_gpt"  # the shipped model's folder in data/checkpoints
CARD_NAME = "course_card.json"  # the course's card beside Hugging Face's own files
SPECIAL = "<|endoftext|>"  # GPT-2's one special token: start, end and padding
VAL_FRACTION = 0.1  # the last 10% of Tiny Shakespeare is the validation text (as in notebook 04)
TARGET_NATS_PER_CHAR = 1.55  # what the shipped model must reach on the validation text (04's character GPT too)
CHECKED_FILES = ("model.safetensors", "tokenizer.json", "config.json")  # what load_hf verifies by sha256
HUB = ("huggingface.co", 443)


# --- quiet, clean output ---------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_hf() -> Iterator[None]:
    """Hide ``transformers``' progress bars ("Loading weights", "Writing model shards") and info logs inside.

    The previous settings come back afterwards. Warnings that matter stay: only
    the verbosity below ``WARNING`` and the bars are switched off.
    """
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity(max(level, hf_logging.WARNING))
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def fix_loss_type(model: Any) -> Any:
    """Name the loss of a causal LM whose class name does not (``GPT2LMHeadModel``).

    ``transformers`` 5 looks the loss up by the class name and warns
    "``loss_type=None`` ... unrecognized" at the first loss it computes, then
    uses ``ForCausalLM``; saying so up front is the same loss without the warning.
    """
    if getattr(model, "loss_type", "ForCausalLM") is None:
        model.loss_type = "ForCausalLM"
    return model


# --- tokenisation (section 1) --------------------------------------------------------------------------


def train_bpe(texts: str | Iterable[str], vocab_size: int = 2000, min_frequency: int = 2) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, as a ``transformers`` fast tokenizer.

    The special token ``<|endoftext|>`` (GPT-2's start, end and padding token)
    is id 0, the 256 byte symbols come next, then one token per merge, most
    frequent pair first, until ``vocab_size``. Deterministic: the same texts
    give the same vocabulary.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not isinstance(vocab_size, int) or vocab_size < 258:
        raise ValueError(f"vocab_size must be an int of at least 258 (256 bytes, the special token, one merge), "
                         f"got {vocab_size!r}")
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not any(texts):
        raise ValueError("train_bpe needs some text")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[SPECIAL],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok: Any, max_length: int | None = None) -> Any:
    """A ``tokenizers.Tokenizer`` as a ``transformers`` fast tokenizer with bos = eos = pad = ``<|endoftext|>``."""
    from transformers import PreTrainedTokenizerFast

    if tok.token_to_id(SPECIAL) is None:
        raise ValueError(f"the tokenizer has no {SPECIAL!r} token")
    kwargs = {"model_max_length": max_length} if max_length else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL, eos_token=SPECIAL, pad_token=SPECIAL,
                                   unk_token=SPECIAL, **kwargs)


def encode(tokenizer: Any, text: str) -> torch.Tensor:
    """``text`` as a 1-D tensor of token ids (the whole text at once, with no length warning)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    return torch.tensor(backend.encode(text, add_special_tokens=False).ids, dtype=torch.long)


def merges(tokenizer: Any) -> list[tuple[str, str]]:
    """The BPE merges in the order they were learnt (a pair of symbols each, in byte-level characters)."""
    model = json.loads(getattr(tokenizer, "backend_tokenizer", tokenizer).to_str())["model"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def chars_per_token(tokenizer: Any, text: str) -> float:
    """How many characters one token covers on average in ``text``."""
    n = len(encode(tokenizer, text))
    if n == 0:
        raise ValueError("chars_per_token needs a non-empty text")
    return len(text) / n


def nats_per_char(loss_per_token: float, num_tokens: int, num_chars: int) -> float:
    """A mean loss per token as a mean loss per character: the same total, over characters.

    nats/char = nats/token x (number of tokens) / (number of characters)

    so a BPE model and a character model of notebook 04 can be compared on the same text.
    """
    if num_tokens <= 0 or num_chars <= 0:
        raise ValueError(f"num_tokens and num_chars must be positive, got {num_tokens} and {num_chars}")
    return loss_per_token * num_tokens / num_chars


def split_text(text: str, val_fraction: float = VAL_FRACTION) -> tuple[str, str]:
    """The first 90% (training) and the last 10% (validation) of a text, cut at a line break."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = int(len(text) * (1 - val_fraction))
    cut = text.rfind("\n", 0, cut) + 1 or cut
    return text[:cut], text[cut:]


# --- the model (section 2) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LMRecipe:
    """A GPT-2's sizes and its training schedule (AdamW, linear warm-up, cosine decay to ``lr / 10``)."""

    n_layer: int = 4  # GPT2Config.n_layer: transformer blocks
    n_embd: int = 128  # GPT2Config.n_embd: the width
    n_head: int = 4  # GPT2Config.n_head
    block_size: int = 128  # GPT2Config.n_positions: the context, in BPE tokens
    dropout: float = 0.1  # GPT2Config's resid_pdrop, embd_pdrop and attn_pdrop
    batch_size: int = 16  # windows per step
    steps: int = 300  # optimiser steps in all
    lr: float = 3e-3  # the peak learning rate, reached after the warm-up
    warmup: int = 30  # steps of linear warm-up from 0
    weight_decay: float = 0.1  # AdamW's, on the weight matrices but the position table

    def __post_init__(self) -> None:
        require_positive(self, "n_layer", "n_embd", "n_head", "block_size", "batch_size", "steps")
        require_multiple(self, "n_embd", of="n_head")
        require_rate(self, "dropout")
        if self.lr <= 0 or self.warmup < 0 or self.weight_decay < 0:
            raise ValueError("lr must be positive, warmup and weight_decay non-negative")

    def describe(self) -> str:
        return (f"{self.n_layer} layers, {self.n_embd} wide, {self.n_head} heads, {self.block_size} positions, "
                f"dropout {self.dropout}; {self.steps} steps of {self.batch_size} x {self.block_size} tokens, "
                f"lr {self.lr:g}")


RECIPES: dict[str, LMRecipe] = {
    "test": LMRecipe(n_layer=1, n_embd=16, n_head=2, block_size=16, batch_size=4, steps=4, warmup=1),
    "ci": LMRecipe(n_layer=2, n_embd=64, n_head=4, block_size=64, batch_size=32, steps=200, lr=3e-3, warmup=20),
    "cpu": LMRecipe(n_layer=4, n_embd=128, n_head=4, block_size=128, batch_size=16, steps=600, lr=2e-3, warmup=40),
    "gpu": LMRecipe(n_layer=6, n_embd=192, n_head=6, block_size=256, batch_size=32, steps=3000, lr=1e-3,
                    warmup=100, dropout=0.2),
    # the shipped model: the cpu size, twice the batch and as many steps as ``--max-minutes`` allows (below)
    "ship": LMRecipe(n_layer=4, n_embd=128, n_head=4, block_size=128, batch_size=32, steps=2400, lr=3e-3,
                     warmup=100),
}


def gpt2_config(tokenizer: Any, recipe: LMRecipe, pad_in_config: bool = True) -> Any:
    """A ``GPT2Config`` sized by ``recipe`` for ``tokenizer``'s vocabulary, with its special ids.

    A default ``GPT2Config`` has ``bos_token_id = eos_token_id = 50256``, GPT-2's
    ``<|endoftext|>``: outside a vocabulary of 2,000, so generation would stop
    on (or pad with) a token that does not exist. Here bos, eos and pad are all
    the tokenizer's end-of-text token, as in GPT-2.

    ``pad_in_config=False`` leaves the model config's pad id unset (the
    generation config still pads with the end token): for data such as
    melodies whose end token occurs inside the training text, where
    ``transformers`` would otherwise warn that the inputs "may be padded"
    whenever a batch of generations holds a finished sequence.
    """
    from transformers import GPT2Config

    special = tokenizer.eos_token_id
    if special is None or not 0 <= special < len(tokenizer):
        raise ValueError("the tokenizer needs an end-of-text token (eos_token) inside its vocabulary")
    return GPT2Config(
        vocab_size=len(tokenizer), n_positions=recipe.block_size, n_embd=recipe.n_embd, n_layer=recipe.n_layer,
        n_head=recipe.n_head, resid_pdrop=recipe.dropout, embd_pdrop=recipe.dropout, attn_pdrop=recipe.dropout,
        bos_token_id=special, eos_token_id=special, pad_token_id=special if pad_in_config else None,
    )


def make_gpt2(config: Any, seed: int | None = None) -> Any:
    """A fresh ``GPT2LMHeadModel`` (GPT-2's N(0, 0.02) initialisation), seeded if ``seed`` is given."""
    from transformers import GPT2LMHeadModel

    if seed is not None:
        torch.manual_seed(seed)
    model = fix_loss_type(GPT2LMHeadModel(config))
    _generation_ids(model)
    return model


def _generation_ids(model: Any) -> None:
    """Copy the special ids into the generation config, which ``save_pretrained`` writes next to the weights."""
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id = model.config.bos_token_id, model.config.eos_token_id
    gen.pad_token_id = model.config.eos_token_id if model.config.pad_token_id is None else model.config.pad_token_id


def num_parameters(model: Any) -> int:
    """Distinct parameters (a tied input/output embedding counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def lm_batch(
    ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``batch_size`` random windows of ``block_size`` tokens ``[B, T]`` (Hugging Face shifts the labels itself)."""
    if ids.ndim != 1 or len(ids) <= block_size:
        raise ValueError(f"need a 1-D tensor longer than block_size={block_size}, got shape {tuple(ids.shape)}")
    starts = torch.randint(len(ids) - block_size + 1, (batch_size,), generator=generator)
    return ids[starts[:, None] + torch.arange(block_size)]


@torch.no_grad()
def token_nll(model: Any, ids: torch.Tensor, block_size: int | None = None, batch_size: int = 32) -> torch.Tensor:
    """``-log p(ids[t] | context)`` for every ``t >= 1``: ``[len(ids) - 1]`` nats.

    The text is cut into consecutive windows of ``block_size`` tokens (the
    model's ``n_positions`` by default) that overlap by one token, so every
    token but the first is predicted once, from the tokens before it in its window.
    """
    if ids.ndim != 1 or len(ids) < 2:
        raise ValueError(f"need a 1-D tensor of at least two tokens, got shape {tuple(ids.shape)}")
    block = block_size or model.config.n_positions
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    starts = list(range(0, len(ids) - 1, block - 1))
    out = []
    try:
        for i in range(0, len(starts), batch_size):
            group = [ids[s:s + block] for s in starts[i:i + batch_size]]
            full = [w for w in group if len(w) == block]
            parts = ([torch.stack(full)] if full else []) + [w[None] for w in group if len(w) < block]
            for x in parts:
                x = x.to(device)
                logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits[:, :-1].float()
                nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")
                out.extend(nll.cpu())
    finally:
        model.train(was_training)
    return torch.cat([row.reshape(-1) for row in out])


def evaluate_lm(model: Any, tokenizer: Any, text: str, block_size: int | None = None) -> dict[str, float]:
    """The loss on a whole text: nats per token, and per character of the predicted tokens.

    Every token but the first is predicted (:func:`token_nll`); the characters
    are those of the predicted tokens, so the two numbers are the same total
    divided two ways (:func:`nats_per_char`).
    """
    ids = encode(tokenizer, text)
    nll = token_nll(model, ids, block_size)
    chars = len(tokenizer.decode(ids[1:].tolist()))
    per_token = float(nll.mean())
    return {"nats_per_token": per_token, "nats_per_char": nats_per_char(per_token, len(nll), chars),
            "tokens": len(nll), "chars": chars, "chars_per_token": chars / len(nll)}


def lr_at(step: int, recipe: LMRecipe, done: float | None = None) -> float:
    """The learning rate at ``step``: linear warm-up, then cosine decay to a tenth of ``recipe.lr``.

    The decay follows the share of the steps done, or ``done`` (a fraction of
    the run, e.g. of a time budget) when it is given and larger, so a run cut
    short by its time budget still ends at the small learning rate.
    """
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    t = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    if done is not None:
        t = max(t, done)
    return recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def make_optimizer(model: Any, recipe: LMRecipe) -> torch.optim.Optimizer:
    """AdamW, with weight decay on the matrices only (not on biases, layer norms or embeddings' positions)."""
    params = {id(p): (n, p) for n, p in model.named_parameters() if p.requires_grad}.values()
    decay = [p for n, p in params if p.ndim >= 2 and "wpe" not in n]
    rest = [p for n, p in params if not (p.ndim >= 2 and "wpe" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=recipe.lr, betas=(0.9, 0.99))


def train_lm(
    model: Any, train_ids: torch.Tensor, recipe: LMRecipe, val_ids: torch.Tensor | None = None,
    eval_every: int = 0, eval_tokens: int = 20_000, seed: int = 0, max_minutes: float | None = None,
    desc: str = "GPT-2", verbose: bool = False,
) -> dict[str, Any]:
    """Train a causal LM on a token stream with ``recipe``; return its curves and the seconds spent.

    Every ``eval_every`` steps (0: only at the end) the loss on the first
    ``eval_tokens`` validation tokens is recorded beside the mean training
    loss since the last point. ``max_minutes`` stops early (the history says
    how many steps were done), and the cosine decay then follows whichever of
    the steps or the minutes runs out first (:func:`lr_at`).
    ``verbose`` prints each point of the curves.
    """
    rng = seed_everything(seed)
    device = next(model.parameters()).device
    opt = make_optimizer(model, recipe)
    history: dict[str, list[float]] = {"step": [], "train": [], "val": []}
    budget, seconds, running, count = TimeBudget(max_minutes), 0.0, 0.0, 0
    model.train()
    bar = progress(total=recipe.steps, desc=desc)
    step = 0
    for step in range(1, recipe.steps + 1):
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(step - 1, recipe, budget.elapsed() / budget.seconds if budget.seconds else None)
        x = lm_batch(train_ids, recipe.batch_size, recipe.block_size, rng).to(device)
        # no padding anywhere: the explicit mask says so (a text may hold the pad id, e.g. <end> between melodies)
        loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seconds += time.perf_counter() - start
        running, count = running + loss.item(), count + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        last = step == recipe.steps or budget.spent()
        if (eval_every and step % eval_every == 0) or last:
            history["step"].append(step)
            history["train"].append(round(running / count, 4))
            val = float(token_nll(model, val_ids[:eval_tokens], recipe.block_size).mean()) if val_ids is not None \
                else float("nan")
            history["val"].append(round(val, 4))
            if verbose:
                bar.write(f"step {step}: train {history['train'][-1]:.3f}, val {val:.3f} nats/token")
            model.train()
            running, count = 0.0, 0
        if last:
            break
    bar.close()
    model.eval()
    return {"history": history, "seconds": round(seconds, 1), "steps": step}


# --- saving and loading in Hugging Face format, with the course's checksums --------------------------------


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file (the course's one checksum helper, :func:`course_utils.data.sha256_of`)."""
    return sha256_of(path)[0]


def _portable_tokenizer_config(folder: Path) -> None:
    """Name the tokenizer class that transformers 4.x and 5.x both know.

    transformers 5 saves ``"tokenizer_class": "TokenizersBackend"``, a class that
    4.x (still common on Colab and GPU images) does not have, so ``AutoTokenizer``
    there fails with "Tokenizer class TokenizersBackend does not exist".
    ``PreTrainedTokenizerFast`` loads the same ``tokenizer.json`` on both lines.
    """
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def save_hf(model: Any, tokenizer: Any, folder: str | Path, card: dict[str, Any] | None = None) -> Path:
    """``save_pretrained`` of the model (safetensors) and the tokenizer into ``folder``, plus the course card.

    Everything is written to a temporary folder beside ``folder`` and moved into
    place at the end, so a crash never leaves half a model. The card holds the
    card format, the sha256 of the weights, tokenizer and config files, and ``card``.
    Returns the card's path.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        with quiet_hf():
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        _portable_tokenizer_config(tmp)
        import tokenizers
        import transformers

        info = {"format_version": CARD_FORMAT, **(card or {})}
        info.update({
            "weights_file": "model.safetensors",
            "weights_sha256": sha256_file(tmp / "model.safetensors"),
            "weights_bytes": (tmp / "model.safetensors").stat().st_size,
            "sha256": {name: sha256_file(tmp / name) for name in CHECKED_FILES},
            "num_parameters": num_parameters(model),
            "versions": {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__},
        })
        (tmp / CARD_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        for path in tmp.iterdir():  # mkdtemp makes a private folder; a shipped model is readable by all
            path.chmod(0o644)
        tmp.chmod(0o755)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder / CARD_NAME


def read_card(folder: str | Path) -> dict[str, Any]:
    """The course card of a saved model, refused without checksums or in an unknown format."""
    path = Path(folder) / CARD_NAME
    if not path.exists():
        raise CheckpointError(f"{path} not found: {folder} is not a model the course saved (save_hf writes it)")
    card = json.loads(path.read_text(encoding="utf-8"))
    if card.get("format_version") != CARD_FORMAT:
        raise CheckpointError(f"{path.name}: card format {card.get('format_version')!r}, this code reads "
                              f"format {CARD_FORMAT}; retrain the model or update course_utils")
    sums = card.get("sha256")
    if not isinstance(sums, dict) or any(not isinstance(sums.get(n), str) or len(sums[n]) != 64
                                         for n in CHECKED_FILES):
        raise CheckpointError(f"{path.name} lacks the sha256 of {', '.join(CHECKED_FILES)}: refusing to trust it")
    return card


def verify_hf(folder: str | Path) -> dict[str, Any]:
    """Check every file the card lists against its sha256; return the card. Pickled weights are refused."""
    folder = Path(folder)
    card = read_card(folder)
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"))
    if pickles:
        raise CheckpointError(f"{folder} holds pickled files {pickles}: the course loads safetensors only")
    for name, expected in card["sha256"].items():
        path = folder / name
        if not path.exists():
            raise CheckpointError(f"{path} is missing (a partial copy of {folder.name}?)")
        actual = sha256_file(path)
        if actual != expected:
            raise CheckpointError(f"{name}: sha256 {actual[:12]}… does not match {expected[:12]}… in {CARD_NAME}: "
                                  "the file is corrupt or was replaced (e.g. a Git LFS pointer)")
    return card


def load_hf(
    folder: str | Path = SHIPPED_DIR / HF_GPT_NAME, device: torch.device | str = "cpu",
) -> tuple[Any, Any, dict[str, Any]]:
    """``(model, tokenizer, card)`` from a folder :func:`save_hf` wrote, checksums verified first.

    The model comes from ``AutoModelForCausalLM.from_pretrained`` with
    ``use_safetensors=True`` (nothing is unpickled), the tokenizer from
    ``AutoTokenizer``; both from the local folder only, with no Hub call.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    card = verify_hf(folder)
    with quiet_hf():
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    fix_loss_type(model)
    return model.to(device).eval(), tokenizer, card


def recipe_of(card: dict[str, Any]) -> LMRecipe:
    """The :class:`LMRecipe` a card records."""
    return LMRecipe(**card["recipe"])


# --- the shipped model (section 6) -------------------------------------------------------------------------


def train_hf_gpt(
    out: Path, recipe: LMRecipe = RECIPES["ship"], vocab_size: int = 2000, seed: int = 0,
    steps: int | None = None, limit: int | None = None, max_minutes: float | None = None,
    eval_every: int = 250, name: str = HF_GPT_NAME, recipe_name: str = "ship",
) -> dict[str, Any]:
    """Train the BPE tokenizer and the GPT-2 on Tiny Shakespeare; save both to ``out / name``; return the card.

    The tokenizer is trained on the training text only; the validation loss in
    the card is measured on the whole validation text, per token and per
    character. ``limit`` keeps the first ``limit`` training characters (quick tests).
    """
    from course_utils.data import load_text

    if steps is not None:
        recipe = replace(recipe, steps=steps)
    device = get_device()
    train_text, val_text = split_text(load_text("tinyshakespeare"))
    if limit:
        train_text = train_text[:limit]
    tokenizer = train_bpe(train_text, vocab_size)
    train_ids, val_ids = encode(tokenizer, train_text), encode(tokenizer, val_text)
    model = make_gpt2(gpt2_config(tokenizer, recipe), seed=seed).to(device)
    print(f"GPT-2: {num_parameters(model):,} parameters; {recipe.describe()}; "
          f"{len(train_ids):,} training tokens, {len(val_ids):,} validation tokens")
    run = train_lm(model, train_ids, recipe, val_ids, eval_every=eval_every, seed=seed, max_minutes=max_minutes,
                   desc="hf-gpt", verbose=True)
    val = evaluate_lm(model, tokenizer, val_text)
    done = replace(recipe, steps=run["steps"])
    card = {
        "task": "GPT-2 language model of Tiny Shakespeare with a byte-level BPE tokenizer (notebook 05)",
        "data": f"Tiny Shakespeare: the first {len(train_text):,} characters for training (tokenizer and model), "
                f"the last {len(val_text):,} for validation",
        "tokenizer": {"type": "byte-level BPE", "vocab_size": len(tokenizer), "trained_on": "the training text"},
        "recipe": asdict(done),
        "training": {"steps": run["steps"], "seed": seed, "tokens_seen": run["steps"] * done.batch_size
                     * done.block_size, "optimizer": "AdamW (0.9, 0.99), warm-up + cosine to lr/10, clip 1.0"},
        "seconds": run["seconds"],
        "hardware": describe_hardware(device),
        "val": {k: round(v, 4) if isinstance(v, float) else v for k, v in val.items()},
        "curve": run["history"],
        "command": f"python -m course_utils.train hf-gpt --recipe {recipe_name} --steps {recipe.steps} --seed {seed}"
                   + (f" --max-minutes {max_minutes:g}" if max_minutes else "")
                   + (f" --limit {limit}" if limit else ""),
    }
    save_hf(model.cpu(), tokenizer, Path(out) / name, card)
    print(f"val {val['nats_per_token']:.3f} nats/token = {val['nats_per_char']:.3f} nats/char "
          f"({val['chars_per_token']:.2f} chars/token) after {run['steps']} steps, {run['seconds']:.0f} s "
          f"-> {Path(out) / name}")
    return card


# --- the Hub, online or not (section 3) -----------------------------------------------------------------


def offline_mode() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is 1/true/yes/on."""
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = 2.0, address: tuple[str, int] = HUB) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection within ``timeout`` seconds.

    ``False`` at once in offline mode. The name lookup and the connection run in
    a background thread that is abandoned after ``timeout``, so a machine with
    no network (or a DNS server that never answers) costs at most ``timeout``.
    """
    if offline_mode():
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(address, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


#: The code the learner's notes hold (``../COURSE_OUTLINE.md``): GPT-3 classes that ``transformers`` never had.
GPT3_SNIPPET = '''\
from transformers import GPT3Tokenizer, GPT3LMHeadModel

tokenizer = GPT3Tokenizer.from_pretrained("gpt3")
model = GPT3LMHeadModel.from_pretrained("gpt3")

input_ids = tokenizer.encode("Once upon a time", return_tensors="pt")
output = model.generate(input_ids, max_length=50)
print(tokenizer.decode(output[0]))
'''

OPEN_MODEL = "openai-community/gpt2"  # GPT-2 small (124M parameters): the open model closest to the snippet's intent


def _why_local(online: bool) -> str:
    """Why a Hub name is not used: the caller said no, offline mode, or no connection."""
    if not online:
        return "the Hub is not used (online=False)"
    return "offline mode (HF_HUB_OFFLINE=1)" if offline_mode() else "the Hugging Face Hub is not reachable"


def resolve_model(
    name: str, fallback: str | Path = SHIPPED_DIR / HF_GPT_NAME, verbose: bool = True, online: bool = True,
) -> str:
    """``name`` if it is a local folder or the Hub is used and reachable; else the course's model, with one line.

    ``online=False`` makes no connection at all (05's ``USE_HUB`` opt-in). A
    local fallback is checked against its card's checksums before anything loads it.
    """
    if Path(name).is_dir() or (online and hub_reachable()):
        return name
    fallback = Path(fallback)
    verify_hf(fallback)
    if verbose:
        why = _why_local(online)
        print(f"{why}: running the same code on the course's model in {_short(fallback)} instead of {name!r}")
    return str(fallback)


def _short(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(SHIPPED_DIR.parent.parent.resolve()))
    except ValueError:
        return str(path)


def run_snippet(
    name: str = OPEN_MODEL, prompt: str = "Once upon a time", max_new_tokens: int = 40, seed: int = 0,
    fallback: str | Path = SHIPPED_DIR / HF_GPT_NAME, online: bool = True, **sampling: Any,
) -> dict[str, Any]:
    """The learner's snippet, corrected: ``Auto*`` classes, an open model, sampling, a pad token.

    ``name`` (GPT-2 by default) comes from the Hub when ``online`` and it is
    reachable; otherwise, or if the download fails, one line says so and the
    identical code runs on the course's shipped model. ``sampling`` overrides
    ``do_sample=True, top_k=50, top_p=0.95``. Returns the model used, whether
    it came from the Hub, and the text.
    """
    source = resolve_model(name, fallback, online=online)
    try:
        text = corrected_snippet(source, prompt, max_new_tokens, seed, sampling)
    except OSError as err:  # reachable but the download failed (poor Wi-Fi, a wrong name, a gated model)
        if source == str(fallback):
            raise
        print(f"loading {name!r} failed ({type(err).__name__}): running the same code on the course's model")
        source = resolve_model(str(fallback), fallback, verbose=False)
        text = corrected_snippet(source, prompt, max_new_tokens, seed, sampling)
    return {"model": source, "from_hub": source == name and not Path(name).is_dir(), "text": text}


def corrected_snippet(source: str, prompt: str, max_new_tokens: int, seed: int, sampling: dict[str, Any]) -> str:
    """The learner's snippet, corrected: the same lines for a Hub name or a local folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_hf():
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = fix_loss_type(AutoModelForCausalLM.from_pretrained(source, use_safetensors=True))
    inputs = tokenizer(prompt, return_tensors="pt")  # input_ids and the attention mask
    torch.manual_seed(seed)
    settings = {"do_sample": True, "top_k": 50, "top_p": 0.95, **sampling}
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id, **settings)
    return tokenizer.decode(output[0], skip_special_tokens=True)


# --- summarisation through the same pipeline (section 4) ----------------------------------------------------

SUMMARISER = "HuggingFaceTB/SmolLM2-360M-Instruct"  # a small open chat model (0.7 GB), Apache-2.0


def summarise(
    text: str, model: str | Any = SUMMARISER, max_new_tokens: int = 60, verbose: bool = True, online: bool = True,
) -> str | None:
    """A one-sentence summary of ``text`` by a chat model through ``pipeline("text-generation")``.

    ``model`` is a Hub name, a local folder, or a ready pipeline. A Hub name
    with ``online=False`` (no connection is tried) or when the Hub is not
    reachable prints one line and returns ``None`` (there
    is no offline summariser to fall back on). ``transformers`` 5 removed the
    ``"summarization"`` pipeline task; a chat model with an instruction is its
    replacement, and works on ``transformers`` 4 too.
    """
    from transformers import pipeline

    if not text.strip():
        raise ValueError("nothing to summarise: the text is empty")
    pipe = model
    if isinstance(model, (str, Path)):
        if not Path(model).is_dir() and not (online and hub_reachable()):
            if verbose:
                print(f"skipped: summarising needs {model!r} from the Hugging Face Hub; {_why_local(online)}")
            return None
        with quiet_hf():
            pipe = pipeline("text-generation", model=str(model))
    messages = [{"role": "user", "content": f"Summarise the following text in one sentence.\n\n{text.strip()}"}]
    out = pipe(messages, max_new_tokens=max_new_tokens, do_sample=False)
    reply = out[0]["generated_text"]
    return (reply[-1]["content"] if isinstance(reply, list) else str(reply)).strip()


# --- generate's sampling filters against the course's own (section 2) -----------------------------------------


@torch.no_grad()
def generate_filters(
    model: Any, input_ids: torch.Tensor, max_new_tokens: int = 5, temperature: float = 1.0,
    top_k: int | None = None, top_p: float | None = None, seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(raw logits, filtered scores)`` of every step of a sampling ``generate``, each ``[steps, B, V]``.

    ``output_logits`` are the model's logits, ``output_scores`` the same after
    ``generate``'s processors (temperature, then top-k, then top-p), which is
    what it samples from.
    """
    torch.manual_seed(seed)
    out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                         do_sample=True, temperature=temperature, top_k=top_k or 0,
                         top_p=1.0 if top_p is None else top_p, output_scores=True, output_logits=True,
                         return_dict_in_generate=True, pad_token_id=model.config.pad_token_id)
    return torch.stack(out.logits).float(), torch.stack(out.scores).float()
