"""course_utils.distributed: data-parallel training under torchrun. Two CPU processes (gloo) match one process
seeing the same global batch; the collectives, in a one-process group (notebook 05, section 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from course_utils import REPO_ROOT, distributed, gpt, gpt_training
from course_utils.checkpoints import load_tensors, read_metadata
from course_utils.runtime import seed_everything

# the test recipe: 2 layers x 32 wide, block 16, a global batch of 8; a few steps on the first 20,000 characters
ARGS = ["-m", "course_utils.train", "gpt", "--recipe", "test", "--steps", "6", "--limit", "20000", "--seed", "0"]
# two processes of one thread each on a two-core machine; no progress bars
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COURSE_QUIET": "1", "PYTHONPATH": str(REPO_ROOT)}

pytestmark = pytest.mark.usefixtures("one_thread")  # as the processes: one thread each


def run(cmd: list[str], out: Path) -> dict:
    proc = subprocess.run([*cmd, "--out", str(out), "--threads", "1"], env=ENV, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return read_metadata(out / gpt_training.CHECKPOINT_NAME)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    one = run([sys.executable, *ARGS], tmp / "one")
    two = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *ARGS],
              tmp / "two")
    return tmp, one, two


@pytest.mark.slow  # starts torchrun and three processes
def test_two_processes_match_one_process_on_the_same_global_batch(runs):
    tmp, one, two = runs
    assert one["training"]["processes"] == 1 and two["training"]["processes"] == 2
    assert two["command"].startswith("torchrun --standalone --nproc_per_node=2 -m course_utils.train gpt")
    # The runs differ only in the order of float32 sums: each process averages the loss over its half of the batch
    # and DDP averages the two gradients, where one process averages over the whole batch at once. Rounding
    # differences of about 1e-7 (relative) per operation grow to at most about 1e-6 in the gradients; Adam turns a
    # relative gradient error into a relative error of the same size in an update of size lr = 1e-3, so the
    # weights after 6 steps differ by about 1e-9 and the losses by less than 1e-6. We allow 1e-5: a real fault
    # (a process training on the other's half, gradients summed instead of averaged, a learning rate off by 2x)
    # moves the losses by more than 1e-3 (see the next test).
    assert two["curve"]["loss"] == pytest.approx(one["curve"]["loss"], rel=1e-5)
    assert two["curve"]["val"] == pytest.approx(one["curve"]["val"], rel=1e-5)
    assert two["val_loss"] == pytest.approx(one["val_loss"], abs=1e-4)  # float16 weights: see the test below
    w1, _ = load_tensors(tmp / "one" / gpt_training.CHECKPOINT_NAME)
    w2, _ = load_tensors(tmp / "two" / gpt_training.CHECKPOINT_NAME)
    # stored as float16: weights that differ by 1e-9 round to the same float16 number, or to neighbours 1 ulp
    # apart (2**-11 relative) when they straddle a rounding boundary
    for name, t in w1.items():
        assert torch.allclose(w2[name].float(), t.float(), rtol=2**-10, atol=1e-6), name


@pytest.mark.slow  # starts torchrun and three processes
def test_the_comparison_can_fail(runs):
    """One process with half the global batch (what a rank trains on without DDP's averaging) differs clearly."""
    _, one, _ = runs
    data = gpt_training.char_data(limit=20_000)
    recipe = gpt_training.RECIPES["test"]
    model_config = replace(recipe.model, vocab_size=len(data.vocab))
    half = replace(recipe, model=model_config, batch_size=4, steps=6, decay_steps=3)
    generator = seed_everything(0)
    model = gpt.GPT(half.model)
    history = gpt_training.fit(model, data, half, generator, eval_every=6, eval_windows=400)
    gaps = [abs(a - b) for a, b in zip(history.loss[1:], one["curve"]["loss"][1:], strict=True)]
    assert max(gaps) > 1e-3


# --- the pieces, in one process -------------------------------------------------------------------------------


def test_setup_outside_torchrun_starts_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rank, world, _ = distributed.setup()
    assert (rank, world) == (0, 1) and not torch.distributed.is_initialized()


@pytest.fixture
def one_process_group(tmp_path):
    """A gloo process group of one process, met through a file (no network port)."""
    torch.distributed.init_process_group("gloo", init_method=(tmp_path / "store").as_uri(), rank=0, world_size=1)
    try:
        yield torch.device("cpu")
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def test_the_collectives_of_one_process_give_its_own_values(one_process_group):
    device = one_process_group
    assert distributed.mean(2.5, device) == 2.5 and distributed.maximum(1.0, device) == 1.0
    assert distributed.from_first(0.125, device) == 0.125
    total = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert distributed.all_sum(total) is total and total.tolist() == [3.0, 4.0]
    model = distributed.wrap(gpt.GPT(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=8), device)
    assert isinstance(model, torch.nn.parallel.DistributedDataParallel)
    distributed.finish()
    assert not torch.distributed.is_initialized()


def _collectives_in(rank: int, store: str, out: str) -> None:
    """One of two processes (started by the next test): each collective once, the results to ``out/RANK.json``."""
    torch.distributed.init_process_group("gloo", init_method=store, rank=rank, world_size=2)
    cpu = torch.device("cpu")
    got = [distributed.mean(rank + 1.0, cpu), distributed.maximum(float(rank), cpu),
           distributed.from_first(10.0 + rank, cpu), distributed.all_sum(torch.tensor([rank + 1.0])).item()]
    distributed.finish()
    (Path(out) / f"{rank}.json").write_text(json.dumps(got))


@pytest.mark.slow  # starts two processes
def test_the_collectives_agree_across_two_processes(tmp_path):
    torch.multiprocessing.spawn(_collectives_in, args=((tmp_path / "store").as_uri(), str(tmp_path)), nprocs=2)
    for rank in (0, 1):  # mean of 1 and 2; max of 0 and 1; the first's 10; sum of 1 and 2
        assert json.loads((tmp_path / f"{rank}.json").read_text()) == [1.5, 1.0, 10.0, 3.0]
