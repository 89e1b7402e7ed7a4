"""The course's speed benchmarks, each against a well-known reference recipe run in the same process.

- ``python -m course_utils.train gpt --bench`` (notebook 05, "For instructors
  and maintainers"): :func:`gpt_benchmark`, training seconds to reach 1.88
  nats/char with the course's ``cpu`` recipe beside nanoGPT's CPU recipe, and
  :func:`print_gpt_benchmark`;
- ``python -m course_utils.train vae --bench`` (notebook 03, "For instructors
  and maintainers"): :func:`vae_benchmark`, seconds to reach a test -ELBO of
  250 nats with the course's ``cpu`` recipe beside the classic PyTorch example
  (:class:`ReferenceVAE`, :func:`train_reference_vae`).

Each writes nothing; only the ratio of the two times means anything across
machines.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import training, vae
from course_utils.configs import choose_recipe
from course_utils.datasets import image_tensors, tensor_batches
from course_utils.gpt import GPT
from course_utils.gpt_training import (
    NANOGPT_CPU,
    RECIPES,
    CharData,
    Recipe,
    char_data,
    evaluate,
    get_batch,
    make_optimizer,
    train_step,
)
from course_utils.progress import progress
from course_utils.runtime import describe_hardware, seed_everything

GPT_TARGET = 1.88  # nats/char: nanoGPT's CPU recipe ends at 1.886 (val, 2,000 steps)
VAE_TARGET = 250.0  # test -ELBO, nats per image


# --- the character GPT against nanoGPT's CPU recipe (notebook 05) ----------------------------------------


def gpt_benchmark(
    target: float = GPT_TARGET, recipe: str | Recipe = "cpu", reference: Recipe | None = NANOGPT_CPU, seed: int = 0,
    slice_seconds: float = 2.0, data: CharData | None = None,
) -> dict[str, Any]:
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
    ours = _GPTRunner(choose_recipe(RECIPES, recipe), data, seed, target)
    runners = [ours] + ([_GPTRunner(reference, data, seed, None, nanogpt=True)] if reference else [])
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


class _GPTRunner:
    """One training run of :func:`gpt_benchmark`, advanced a slice of time at a time."""

    def __init__(self, recipe: Recipe, data: CharData, seed: int, target: float | None, nanogpt: bool = False) -> None:
        self.recipe, self.data, self.target, self.nanogpt = recipe, data, target, nanogpt
        torch.manual_seed(seed)
        self.model = GPT(recipe.model)
        self.optimizer = make_optimizer(self.model, recipe)  # nanoGPT fuses AdamW on CUDA only
        self.generator = torch.Generator().manual_seed(seed)
        self.step, self.seconds, self.own_eval_seconds, self.done = 0, 0.0, 0.0, False
        self.reached_at = self.reached_step = self.val_at_stop = self.estimate = None
        self.eval_every = 250 if nanogpt else max(10, recipe.steps // 40)  # ours: the whole split, clock paused
        if nanogpt:  # nanoGPT reads each batch from a numpy memory map of uint16 (its train.bin)
            fd, name = tempfile.mkstemp(prefix="course_bench_train_", suffix=".bin")
            os.close(fd)
            self.path = Path(name)
            data.train.numpy().astype(np.uint16).tofile(self.path)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.recipe
        if not self.nanogpt:
            return get_batch(self.data.train, r.batch_size, r.model.block_size, self.generator)
        mm = np.memmap(self.path, dtype=np.uint16, mode="r")  # nanoGPT re-opens it every batch
        ix = torch.randint(len(mm) - r.model.block_size, (r.batch_size,), generator=self.generator)
        x = torch.stack([torch.from_numpy(mm[i:i + r.model.block_size].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(mm[i + 1:i + 1 + r.model.block_size].astype(np.int64)) for i in ix])
        return x, y

    def _nanogpt_estimate(self) -> float:
        start, losses = time.perf_counter(), []
        with training.evaluating(self.model):
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
            train_step(self.model, self.optimizer, x, y, self.recipe.lr_at(self.step), self.recipe.grad_clip)
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


def print_gpt_benchmark(result: dict[str, Any], file: Any = sys.stdout) -> None:
    """:func:`gpt_benchmark`'s result as a few lines of text."""
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


# --- the VAE against the classic PyTorch example (notebook 03) ----------------------------------------------------


class ReferenceVAE(nn.Module):
    """The classic PyTorch example's VAE (examples/vae/main.py), layer names and all: 784-400-20."""

    latent_dim = 20

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        return self.fc21(h1), self.fc22(h1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (the example applies the sigmoid here; :func:`train_reference_vae` applies it in the loss)."""
        return self.fc4(F.relu(self.fc3(z))).view(-1, *vae.IMAGE_SHAPE)


def train_reference_vae(
    images: torch.Tensor, test_images: torch.Tensor, target: float, max_epochs: int, seed: int = 0,
    evals_per_epoch: int = 4,
) -> dict[str, Any]:
    """The example's recipe: Adam 1e-3, batch 128, sigmoid + ``binary_cross_entropy(reduction='sum')`` + KL.

    The example sums the loss over the batch as well; with Adam that only rescales the gradient,
    which Adam's normalisation undoes. Batches come from in-memory tensors (as for the course's
    recipe), so the two runs differ in their recipes only. Evaluated like :func:`course_utils.vae.fit_vae`.
    """
    rng = seed_everything(seed)
    model = ReferenceVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    per_epoch = -(-len(images) // 128)
    every, step, start = max(1, per_epoch // evals_per_epoch), 0, time.perf_counter()
    history: dict[str, Any] = {"eval": {"epoch": [], "neg_elbo": [], "seconds": []}, "reached": None}
    bar = progress(total=max_epochs * per_epoch, desc="reference")
    while step < max_epochs * per_epoch and history["reached"] is None:
        for (x,) in tensor_batches(images, batch_size=128, generator=rng):
            mu, logvar = model.encode(x)
            recon_x = torch.sigmoid(model.decode(vae.reparameterize(mu, logvar)))
            bce = F.binary_cross_entropy(recon_x.view(-1, 784), x.view(-1, 784), reduction="sum")
            loss = bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            if step % every == 0:
                value = vae.evaluate(model, test_images)["neg_elbo"]  # type: ignore[arg-type]
                history["eval"]["epoch"].append(round(step / per_epoch, 3))
                history["eval"]["neg_elbo"].append(round(value, 3))
                history["eval"]["seconds"].append(round(time.perf_counter() - start, 2))
                if value <= target:
                    history["reached"] = {"seconds": history["eval"]["seconds"][-1], "epoch": step / per_epoch}
                    break
    bar.close()
    history.update(seconds=round(time.perf_counter() - start, 2), steps=step)
    return history



def vae_benchmark(
    target: float = VAE_TARGET, max_epochs: int = 6, seed: int = 0, evals_per_epoch: int = 4,
    threads: int | None = None, log: Callable[[str], None] = print,
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Wall and CPU seconds, and epochs, for the example's recipe and the course's to reach test -ELBO <= ``target``.

    Both run in this process, one after the other, on the CPU, evaluated on all 10,000 test images
    ``evals_per_epoch`` times per epoch (the evaluations count in the time). Returns both rows and
    the ratio course / reference of the wall seconds (the issue's target: at most 0.7). ``data``
    replaces the Fashion-MNIST ``(train, test)`` images (for tests).
    """
    if threads:
        torch.set_num_threads(threads)
    if data is None:
        data = image_tensors("fashion-mnist", train=True)[0], image_tensors("fashion-mnist", train=False)[0]
    x_train, x_test = data
    seed_everything(seed)  # its first call imports torch's compiler stack: kept out of either recipe's CPU time
    rows: dict[str, dict[str, Any]] = {}
    cpu_seconds: dict[str, float] = {}
    for name in ("reference", "course cpu recipe"):
        cpu0 = time.process_time()
        if name == "reference":
            history = train_reference_vae(x_train, x_test, target, max_epochs, seed, evals_per_epoch)
        else:
            _, history = vae.fit_recipe(vae.FAST_RECIPE, x_train, x_test, seed=seed, device="cpu", epochs=max_epochs,
                                        evals_per_epoch=evals_per_epoch, fit={"target": target},
                                        desc="VAE (course recipe)")
        reached, cpu_seconds[name] = history["reached"], time.process_time() - cpu0
        rows[name] = {"reached": reached is not None, "seconds": reached["seconds"] if reached else None,
                      "epochs": reached["epoch"] if reached else None,
                      "cpu_seconds": round(cpu_seconds[name], 1), "curve": history["eval"]}
        log(f"{name:<18} " + (f"reached {target:g} after {reached['epoch']:.2f} epochs in {reached['seconds']:.1f} s "
                              f"wall ({rows[name]['cpu_seconds']:.1f} s CPU)" if reached
                              else f"did not reach {target:g} in {max_epochs} epochs"))
    ref, course = rows["reference"], rows["course cpu recipe"]
    # a tiny run can finish within one tick of a timer: no ratio of a zero time
    both = ref["reached"] and course["reached"] and ref["seconds"] > 0
    ratio = course["seconds"] / ref["seconds"] if both else None
    ref_cpu = cpu_seconds["reference"]
    cpu_ratio = cpu_seconds["course cpu recipe"] / ref_cpu if both and ref_cpu > 0 else None
    if ratio is not None:
        cpu_text = f" ({cpu_ratio:.2f} of the CPU time)" if cpu_ratio is not None else ""
        log(f"ratio course / reference: {ratio:.2f} of the wall time{cpu_text}; target <= 0.7")
    return {"target": target, "rows": rows, "ratio": ratio, "cpu_ratio": cpu_ratio,
            "hardware": describe_hardware(torch.device("cpu")), "evals_per_epoch": evals_per_epoch}
