"""A small GPT-2 with Hugging Face ``transformers``: config, training, saving, loading, generating (notebook 06).

Taught in notebook 06 (the tokenizer it reads is :mod:`course_utils.bpe`; the
Hub and the GPT-3 snippet are :mod:`course_utils.hub`):

- section 1: :func:`split_text`, the training and validation text (the
  tokenizer is trained on the first only);
- section 2, a GPT-2 of our own: :class:`LMRecipe` and :data:`RECIPES` (sizes
  and schedule), :func:`gpt2_config` (bos/eos/pad set inside the small
  vocabulary), :func:`make_gpt2`, :func:`train_lm` (AdamW, the course's
  warm-up and cosine decay, a progress bar, train/val curves),
  :func:`evaluate_lm` (nats per token and per character on a whole split),
  :func:`save_hf` and :func:`load_hf` (``save_pretrained`` /
  ``from_pretrained``, safetensors only, checksums in a course card),
  :func:`quiet_hf` (no progress-bar or warning floods),
  :func:`captured_warnings` (what the library warned, as strings), and
  :func:`generate_filters` (``generate``'s sampling filters, to compare with 05's);
- section 2.3, 05 and 06 connected: :func:`gpt_from_hf`, a Hugging Face GPT-2's
  weights in 05's :class:`course_utils.gpt.GPT` (same logits);
- section 6: :func:`train_hf_gpt`, what ``python -m course_utils.train hf-gpt`` runs.

``transformers`` is imported inside the functions that use it: importing it
takes seconds, and ``python -m course_utils.train`` imports this module for
every command.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import tokenizers
import torch

from course_utils import bpe, training
from course_utils.bpe import encode, nats_per_char, train_bpe
from course_utils.checkpoints import CARD_FORMAT, SHIPPED_DIR, CheckpointError, num_parameters
from course_utils.configs import require_multiple, require_positive, require_rate
from course_utils.datasets import load_text
from course_utils.files import atomic_folder, sha256_of
from course_utils.gpt import GPT, GPTConfig
from course_utils.progress import TimeBudget, progress
from course_utils.runtime import describe_hardware, get_device, seed_everything

HF_GPT_NAME = "hf_gpt"  # the shipped model's folder in data/checkpoints
CARD_NAME = "course_card.json"  # the course's card beside Hugging Face's own files
VAL_FRACTION = 0.1  # the last 10% of Tiny Shakespeare is the validation text (as in notebook 05)
TARGET_NATS_PER_CHAR = 1.55  # what the shipped model must reach on the validation text (05's char GPT: 1.60, its card)
CHECKED_FILES = ("model.safetensors", "tokenizer.json", "config.json")  # what load_hf verifies by sha256


# --- quiet, clean output ---------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_hf() -> Iterator[None]:
    """Hide ``transformers``' progress bars ("Loading weights", "Writing model shards") and info logs inside.

    The previous settings come back afterwards. Warnings that matter stay: only
    the verbosity below ``WARNING`` and the bars are switched off.
    """
    from transformers.utils import logging as hf_logging  # lazy: importing transformers takes seconds

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity(max(level, hf_logging.WARNING))
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def captured_warnings(forget_once: bool = False, quiet: bool = False) -> Iterator[list[str]]:
    """Collect every warning said inside (notebook 06): the ``transformers`` logger's, then Python's ``warnings``.

    The list is filled as the block runs (log records) and when it ends (warnings).
    ``forget_once=True`` first clears ``transformers``' memory of the warnings it
    says once a session (``logging.Logger.warning_once``), so they can be seen again.
    ``quiet=True`` takes the logger's own handlers (its line on stderr) off inside the block,
    so a cell that prints the list shows each warning once, where it prints it.
    """
    said: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("transformers")
    if forget_once and hasattr(logging.Logger, "warning_once"):
        logging.Logger.warning_once.cache_clear()
    others = list(logger.handlers) if quiet else []
    for other in others:
        logger.removeHandler(other)
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
        said.extend(str(w.message) for w in caught)
    finally:
        logger.removeHandler(handler)
        for other in others:
            logger.addHandler(other)


def fix_loss_type(model: Any) -> Any:
    """Name the loss of a causal LM whose class name does not (``GPT2LMHeadModel``).

    ``transformers`` looks the loss up by the class name, finds none in
    ``GPT2LMHeadModel`` (``loss_type`` is ``None``), warns "``loss_type=None`` ...
    unrecognized" at the first loss it computes (``PreTrainedModel.loss_function``),
    then uses ``ForCausalLM``; saying so up front is the same loss without the warning.
    """
    if getattr(model, "loss_type", "ForCausalLM") is None:
        model.loss_type = "ForCausalLM"
    return model


# --- the text (section 1) -----------------------------------------------------------------------------------


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
    """A GPT-2's sizes and its training schedule (AdamW, linear warm-up, cosine decay to ``lr / 10``: :meth:`lr_at`)."""

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

    def lr_at(self, step: int, done: float | None = None) -> float:
        """The learning rate of ``step``: :func:`course_utils.training.lr_at` with this recipe's fields."""
        return training.lr_at(step, lr=self.lr, min_lr=self.lr / 10, warmup=self.warmup, steps=self.steps, done=done)

    def describe(self) -> str:
        return (f"{self.n_layer} layers, {self.n_embd} wide, {self.n_head} heads, {self.block_size} positions, "
                f"dropout {self.dropout}; {self.steps} steps of {self.batch_size} x {self.block_size} tokens, "
                f"lr {self.lr:g}")


RECIPES: dict[str, LMRecipe] = {
    "test": LMRecipe(n_layer=1, n_embd=16, n_head=2, block_size=16, batch_size=4, steps=4, warmup=1),
    "ci": LMRecipe(n_layer=2, n_embd=64, n_head=4, block_size=64, batch_size=16, steps=200, lr=3e-3, warmup=20),
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
    from transformers import GPT2Config  # lazy: importing transformers takes seconds

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
    from transformers import GPT2LMHeadModel  # lazy: importing transformers takes seconds

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


def lm_batch(
    ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``batch_size`` random windows of ``block_size`` tokens ``[B, T]`` (Hugging Face shifts the labels itself)."""
    if ids.ndim != 1 or len(ids) <= block_size:
        raise ValueError(f"need a 1-D tensor longer than block_size={block_size}, got shape {tuple(ids.shape)}")
    starts = torch.randint(len(ids) - block_size + 1, (batch_size,), generator=generator)
    return ids[starts[:, None] + torch.arange(block_size)]


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
    starts = list(range(0, len(ids) - 1, block - 1))
    out = []
    with training.evaluating(model):
        for i in range(0, len(starts), batch_size):
            group = [ids[s:s + block] for s in starts[i:i + batch_size]]
            full = [w for w in group if len(w) == block]
            parts = ([torch.stack(full)] if full else []) + [w[None] for w in group if len(w) < block]
            for x in parts:
                x = x.to(device)
                logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits[:, :-1].float()
                nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")
                out.extend(nll.cpu())
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


def make_optimizer(model: Any, recipe: LMRecipe) -> torch.optim.Optimizer:
    """:func:`training.adamw`: the matrices decayed, not biases, layer norms or the position table ``wpe``."""
    return training.adamw(model, lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(0.9, 0.99), no_decay=("wpe",))


def train_step(model: Any, opt: torch.optim.Optimizer, x: torch.Tensor) -> float:
    """One AdamW step on a batch of windows ``[B, T]`` (labels = inputs: the model shifts them); returns the loss."""
    # no padding anywhere: the explicit mask says so (a text may hold the pad id, e.g. <end> between melodies)
    loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # gradients clipped at norm 1
    opt.step()
    return loss.item()


def train_lm(
    model: Any, train_ids: torch.Tensor, recipe: LMRecipe, val_ids: torch.Tensor | None = None,
    eval_every: int = 0, eval_tokens: int = 20_000, seed: int = 0, max_minutes: float | None = None,
    desc: str = "GPT-2", verbose: bool = False, keep_best: bool = False,
) -> dict[str, Any]:
    """Train a causal LM on a token stream with ``recipe``; return its curves and the seconds spent.

    Every ``eval_every`` steps (0: only at the end) the loss on the first
    ``eval_tokens`` validation tokens is recorded beside the mean training
    loss since the last point. ``max_minutes`` stops early (the history says
    how many steps were done), and the cosine decay then follows whichever of
    the steps or the minutes runs out first (:meth:`LMRecipe.lr_at`).
    ``verbose`` prints each point of the curves. ``keep_best`` (early
    stopping; needs ``val_ids``) puts back, at the end, the weights of the
    point with the lowest validation loss (the first, on a tie), and the
    result's ``"best_step"`` says which step that was.
    """
    if keep_best and val_ids is None:
        raise ValueError("keep_best needs val_ids: the best point is chosen on the validation loss")
    rng = seed_everything(seed)
    device = next(model.parameters()).device
    opt = make_optimizer(model, recipe)
    history: dict[str, list[float]] = {"step": [], "train": [], "val": []}
    budget, seconds, running, count = TimeBudget(max_minutes), 0.0, 0.0, 0
    best: dict[str, Any] = {"val": math.inf, "step": None, "state": None}
    model.train()
    bar = progress(total=recipe.steps, desc=desc)
    step = 0
    for step in range(1, recipe.steps + 1):
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = recipe.lr_at(step - 1, budget.elapsed() / budget.seconds if budget.seconds else None)
        loss = train_step(model, opt, lm_batch(train_ids, recipe.batch_size, recipe.block_size, rng).to(device))
        seconds += time.perf_counter() - start
        running, count = running + loss, count + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        last = step == recipe.steps or budget.spent()
        if (eval_every and step % eval_every == 0) or last:
            history["step"].append(step)
            history["train"].append(round(running / count, 4))
            val = float(token_nll(model, val_ids[:eval_tokens], recipe.block_size).mean()) if val_ids is not None \
                else float("nan")
            history["val"].append(round(val, 4))
            if keep_best and val < best["val"]:  # a copy of the weights, off the accelerator
                best.update(val=val, step=step, state={k: v.detach().to("cpu", copy=True)
                                                       for k, v in model.state_dict().items()})
            if verbose:
                bar.write(f"step {step}: train {history['train'][-1]:.3f}, val {val:.3f} nats/token")
            model.train()
            running, count = 0.0, 0
        if last:
            break
    bar.close()
    if keep_best and best["state"] is not None:
        model.load_state_dict(best["state"])  # copied into the parameters in place: tied weights stay tied
    model.eval()
    result = {"history": history, "seconds": round(seconds, 1), "steps": step}
    if keep_best:
        result["best_step"] = best["step"]
    return result


# --- saving and loading in Hugging Face format, with the course's checksums --------------------------------


def _portable_tokenizer_config(folder: Path) -> None:
    """Name the tokenizer class that transformers 4.x and 5.x both know.

    transformers 5 saves ``"tokenizer_class": "TokenizersBackend"``, a class that
    4.x (still common on Colab and GPU images) does not have, so ``AutoTokenizer``
    there fails with "Tokenizer class TokenizersBackend does not exist".
    ``PreTrainedTokenizerFast`` loads the same ``tokenizer.json`` on both lines.
    It also names the model's inputs (:data:`bpe.MODEL_INPUTS`: no ``token_type_ids``).
    """
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["model_input_names"] = list(bpe.MODEL_INPUTS)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def save_hf(model: Any, tokenizer: Any, folder: str | Path, card: dict[str, Any] | None = None) -> Path:
    """``save_pretrained`` of the model (safetensors) and the tokenizer into ``folder``, plus the course card.

    Everything is written to a temporary folder beside ``folder`` and moved into
    place at the end (:func:`course_utils.files.atomic_folder`), so a crash never
    leaves half a model. The card holds the card format, the sha256 of the
    weights, tokenizer and config files, and ``card``. Returns the card's path.
    """
    import transformers  # lazy: importing transformers takes seconds (here: its version for the card)

    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        with quiet_hf():
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        _portable_tokenizer_config(tmp)
        info = {"format_version": CARD_FORMAT, **(card or {})}
        info.update({
            "weights_file": "model.safetensors",
            "weights_sha256": sha256_of(tmp / "model.safetensors")[0],
            "weights_bytes": (tmp / "model.safetensors").stat().st_size,
            "sha256": {name: sha256_of(tmp / name)[0] for name in CHECKED_FILES},
            "num_parameters": num_parameters(model),
            "versions": {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__},
        })
        (tmp / CARD_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
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
        actual = sha256_of(path)[0]
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
    from transformers import AutoModelForCausalLM, AutoTokenizer  # lazy: importing transformers takes seconds

    folder = Path(folder)
    card = verify_hf(folder)
    with quiet_hf():
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    tokenizer.model_input_names = list(bpe.MODEL_INPUTS)  # folders saved before save_hf wrote it
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
        "task": "GPT-2 language model of Tiny Shakespeare with a byte-level BPE tokenizer (notebook 06)",
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


# --- 05 and 06 connected: a Hugging Face GPT-2 in 05's GPT class (section 2.3) ------------------------------


def gpt_from_hf(model: Any) -> Any:
    """05's :class:`course_utils.gpt.GPT` holding the weights of a Hugging Face ``GPT2LMHeadModel``.

    The architecture is GPT-2's with 05's three switches on (``bias=True``,
    ``tie_weights=True``, ``activation="gelu_new"``). The parameter names are
    the same up to the ``transformer.`` prefix; Hugging Face's ``Conv1D`` layers
    store their weights as ``[in, out]``, ``nn.Linear`` as ``[out, in]``, so
    those four matrices per block are transposed. The result is in eval mode
    on the model's device and gives the same logits (tests/test_hf.py).
    """
    c = model.config
    if c.model_type != "gpt2" or c.activation_function != "gelu_new" or c.n_inner not in (None, 4 * c.n_embd):
        raise ValueError("gpt_from_hf reads GPT-2 models with gelu_new and a 4x MLP")
    if not c.tie_word_embeddings or c.scale_attn_by_inverse_layer_idx or c.reorder_and_upcast_attn \
            or abs(c.layer_norm_epsilon - 1e-5) > 1e-12:
        raise ValueError("gpt_from_hf needs tied embeddings, plain attention scaling and layer-norm eps 1e-5")
    config = GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer, n_head=c.n_head,
                       n_embd=c.n_embd, dropout=0.0, bias=True, tie_weights=True, activation="gelu_new")
    ours = GPT(config)
    source = model.state_dict()
    transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    state = {}
    for name in ours.state_dict():
        if name == "lm_head.weight":
            state[name] = source["transformer.wte.weight"]  # tied: the output layer is the token embedding
            continue
        weight = source[name]
        state[name] = weight.t() if name.endswith(transposed) else weight
    ours.load_state_dict(state, strict=True)
    return ours.to(next(model.parameters()).device).eval()

