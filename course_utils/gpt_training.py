"""Training the character GPT of :mod:`course_utils.gpt`: data, recipes, the loop, the shipped model (notebook 05).

Taught in notebook 05:

- section 1, language modelling: :func:`char_data` (Tiny Shakespeare, 90/10
  split, the 65 characters as tokens), :func:`get_batch`, :func:`evaluate`
  (the loss in nats per character on a whole split);
- section 3, training: :class:`Recipe` (batch, learning-rate schedule,
  optimiser; :meth:`Recipe.lr_at` is the shared
  :func:`course_utils.training.lr_at`), :data:`RECIPES`,
  :func:`make_optimizer`, :func:`train_step` and :func:`fit` (train/val curves);
- section 6: :func:`train_gpt`, what ``python -m course_utils.train gpt``
  runs, data-parallel under ``torchrun`` (:mod:`course_utils.distributed`),
  and its card.

The model itself is in :mod:`course_utils.gpt`; the speed benchmark against
nanoGPT (``--bench``) in :mod:`course_utils.benchmarks`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import distributed, text, training
from course_utils.checkpoints import save_checkpoint
from course_utils.configs import choose_recipe, require_positive
from course_utils.datasets import load_text
from course_utils.gpt import GPT, GPTConfig
from course_utils.progress import TimeBudget, progress
from course_utils.runtime import describe_hardware, get_device, seed_everything

CHECKPOINT_NAME = "char_gpt"
#: The bound notebook 05 asserts on the shipped model's validation loss: the CPU ship's bound (30 minutes of a
#: 2-core CPU); the 1.55 target needs the ``gpu`` recipe.
SHIPPED_MAX_NATS_PER_CHAR = 1.65
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


def evaluate(
    model: GPT, data: torch.Tensor, batch_size: int = 256, max_windows: int | None = None,
    shard: tuple[int, int] = (0, 1),
) -> float:
    """The mean loss in nats per character over ``data`` cut into windows of the model's block size.

    Every position of every window counts, so each character is predicted from
    1 to ``block_size`` characters of context, as in training and in
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
    with training.evaluating(model):
        for start in range(0, len(xs), batch_size):
            x, y = xs[start:start + batch_size].to(device), ys[start:start + batch_size].to(device)
            logits, _ = model(x)
            total[0] += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").double()
            total[1] += y.numel()
    if world > 1:
        distributed.all_sum(total)
    return float(total[0] / total[1])


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

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): the shared :func:`course_utils.training.lr_at`."""
        decay_steps = None if self.schedule == "cosine" else self.decay_steps  # the cosine starts after the warm-up
        return training.lr_at(step, lr=self.lr, min_lr=self.min_lr, warmup=self.warmup, steps=self.steps,
                              decay_steps=decay_steps, shape=self.schedule)

    def describe(self) -> str:
        m = self.model
        return (f"{m.n_layer} layers x {m.n_head} heads x {m.n_embd} wide, block {m.block_size}; "
                f"batch {self.batch_size}, {self.steps:,} steps, lr {self.lr:g} ({self.schedule}, warm-up "
                f"{self.warmup}, decay over {self.decay_steps} to {self.min_lr:g})")


#: nanoGPT's published CPU recipe for Tiny Shakespeare (the reference of ``--bench``).
NANOGPT_CPU = Recipe(GPTConfig(tie_weights=True), batch_size=12, steps=2000, lr=1e-3, min_lr=1e-4,
                     warmup=100, decay_steps=1900, schedule="cosine")
#: The course's recipes: ``ci``/``cpu``/``gpu`` are notebook 05's profiles, ``ship`` the shipped model.
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


def make_optimizer(model: nn.Module, recipe: Recipe, fused: bool = False) -> torch.optim.AdamW:
    """:func:`training.adamw` with the recipe's rate, decay and beta2 (matrices decayed, as in nanoGPT)."""
    return training.adamw(model, lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(0.9, recipe.beta2),
                          fused=fused)


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
    returning True stops too (e.g. at a target loss). In a data-parallel run
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
        batch = get_batch(data.train, recipe.batch_size, recipe.model.block_size, generator)  # the global batch
        x, y = (t[rank * per_rank:(rank + 1) * per_rank].to(device) for t in batch)  # this process's slice
        at = _clock_step(step, recipe.steps, budget, world, device) if clock else step
        if clock:
            history.lr.append(recipe.lr_at(at))
        loss = train_step(net, optimizer, x, y, recipe.lr_at(at), recipe.grad_clip)
        if world > 1:  # log the loss of the global batch: the mean of the processes' slices
            loss = distributed.mean(loss, device)
        history.loss.append(round(loss, 6))
        seconds += time.perf_counter() - start
        bar.update(1)
        last = step + 1 == recipe.steps or at + 1 >= recipe.steps
        if (step + 1) % eval_every == 0 or last:
            _record_evaluation(history, model, data, step + 1, seconds, eval_windows, shard=(rank, world))
            bar.set_postfix(train=f"{history.train[-1]:.3f}", val=f"{history.val[-1]:.3f}")
            stop = bool(on_eval and on_eval(step + 1, seconds, history.val[-1])) or budget.spent()
            if world > 1:  # every process must stop at the same step, or the others wait forever
                stop = bool(distributed.maximum(float(stop), device))
            if stop or last:
                break
    bar.close()
    model.eval()
    return history


def _record_evaluation(
    history: History, model: GPT, data: CharData, step: int, seconds: float, eval_windows: int | None,
    shard: tuple[int, int],
) -> None:
    """Append the step, the training seconds so far, and the losses on both splits to ``history``."""
    history.eval_step.append(step)
    history.eval_seconds.append(round(seconds, 2))
    history.train.append(round(evaluate(model, data.train, max_windows=eval_windows, shard=shard), 4))
    history.val.append(round(evaluate(model, data.val, max_windows=eval_windows, shard=shard), 4))


def _clock_step(step: int, steps: int, budget: TimeBudget, world: int, device: torch.device) -> int:
    """The step of the schedule that ``step`` takes under a wall-clock schedule (the same in every process)."""
    at = max(step, min(steps - 1, int(budget.elapsed() / max(budget.seconds, 1e-9) * steps)))
    return int(distributed.maximum(float(at), device)) if world > 1 else at


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
    rank, world, device = distributed.setup()
    name = recipe if isinstance(recipe, str) else "custom"
    recipe = choose_recipe(RECIPES, recipe)
    data = char_data(limit=limit)
    recipe = replace(recipe, model=replace(recipe.model, vocab_size=len(data.vocab)))
    if steps is not None:
        recipe = with_steps(recipe, steps)
    if max_minutes is not None:  # the steps fill TRAIN_SHARE of the time; the curve's evaluations take the rest
        per_step = measure_step_seconds(recipe, data, wall=True) if rank == 0 else 0.0
        if world > 1:  # the first process measures; every process gets its figure, and hence the same steps
            per_step = distributed.from_first(per_step, device)
        recipe = time_budget_recipe(recipe, per_step, max_minutes * TRAIN_SHARE)
    generator = seed_everything(seed)
    model = GPT(recipe.model).to(device)
    ddp = distributed.wrap(model, device) if world > 1 else None
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
        distributed.finish()
    return card


def _card(
    model: GPT, recipe: Recipe, name: str, data: CharData, history: History, seed: int, world: int,
    device: torch.device, command: str, eval_windows: int | None,
) -> dict[str, Any]:
    """The shipped model's card: how it was trained, its curve, and its loss as stored (float16)."""
    # the card's loss is that of the weights as stored (float16), measured on the whole validation split
    stored = GPT(model.config)
    stored.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    val, val_stored = evaluate(model, data.val), evaluate(stored, data.val)
    steps = history.eval_step[-1] if history.eval_step else recipe.steps
    return {
        "task": "character-level GPT for Tiny Shakespeare (notebook 05)",
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
