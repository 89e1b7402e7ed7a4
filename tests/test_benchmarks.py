"""course_utils.benchmarks: what each benchmark counts, where it stops, and the --bench flags (notebooks 03, 05).

The clocks are replaced by one that ticks one second per reading, so every count of seconds is exact and
does not depend on the machine's speed."""

from __future__ import annotations

import io

import pytest
import torch

from course_utils import benchmarks, gpt_training, train, vae
from course_utils.gpt import GPT, GPTConfig
from tests.vae_support import bar_images

pytestmark = pytest.mark.usefixtures("one_thread")


class TickingClock:
    """Stands in for the ``time`` module: every reading is one second after the last, so a run's seconds count
    the clock readings around what is timed, never the resolution or the speed of the machine's timers."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now

    process_time = perf_counter


# --- the character GPT against nanoGPT's CPU recipe ---------------------------------------------------------

TINY = gpt_training.Recipe(GPTConfig(vocab_size=8, block_size=8, n_layer=1, n_head=1, n_embd=16), batch_size=8,
                           steps=60, lr=3e-2, warmup=2, decay_steps=20, schedule="linear")
REFERENCE = gpt_training.Recipe(TINY.model, batch_size=2, steps=40, lr=1e-3, warmup=2, decay_steps=30)
TARGET = 0.01  # nats/char: the tiny run passes it between its first and its last evaluation


@pytest.fixture(scope="module")
def cycle():
    """A text whose validation part is the same cycle as its training part: learnable to a loss near 0."""
    data = gpt_training.char_data("abcdefgh" * 400)
    torch.manual_seed(0)  # the benchmark's own run, repeated through the training loop, evaluated as often
    history = gpt_training.fit(GPT(TINY.model), data, TINY, torch.Generator().manual_seed(0), eval_every=10,
                               eval_windows=None)
    return data, history


def test_gpt_benchmark_stops_at_the_target_and_counts_training_steps_only(cycle, monkeypatch):
    data, history = cycle
    monkeypatch.setattr(benchmarks, "time", TickingClock())
    result = benchmarks.gpt_benchmark(target=TARGET, recipe=TINY, reference=REFERENCE, slice_seconds=7, data=data)
    first = next(i for i, val in enumerate(history.val) if val <= TARGET)
    assert 0 < first < len(history.val) - 1  # the target is reached, neither at the first check nor at the end
    assert result["steps"] == history.eval_step[first] and result["val"] == history.val[first]
    assert result["seconds"] == result["steps"]  # one tick per training step: the evaluations are off the clock
    ref = result["reference"]
    assert ref["steps"] == ref["train_seconds"] == REFERENCE.steps  # the reference runs all its steps
    assert ref["wall_seconds"] == REFERENCE.steps + 2  # its own estimates, at the start and the end: a tick each
    assert result["ratio"] == result["steps"] / REFERENCE.steps


def test_gpt_benchmark_that_never_reaches_its_target(cycle):
    data, history = cycle
    result = benchmarks.gpt_benchmark(target=0.0, recipe=TINY, reference=None, data=data)
    assert result["seconds"] is None and result["steps"] is None and "reference" not in result
    assert result["val"] == history.val[-1]  # it trained all its steps


def test_print_gpt_benchmark():
    result = {"target": 1.88, "recipe": "tiny", "seconds": 12.34, "steps": 300, "val": 1.8765, "hardware": "a CPU",
              "reference": {"recipe": "nanoGPT CPU: r", "steps": 2000, "train_seconds": 50.0, "wall_seconds": 60.0,
                            "val": 1.886, "val_nanogpt_estimate": 1.89}, "ratio": 0.2468}
    out = io.StringIO()
    benchmarks.print_gpt_benchmark(result, file=out)
    text = out.getvalue()
    assert "reached val 1.8765 <= 1.88 at step 300: 12.3 s of training" in text
    assert "2,000 steps: 50.0 s of training (60.0 s with its own evaluations)" in text
    assert "ratio: 0.25 x the reference's training time" in text and text.rstrip().endswith("on a CPU")
    out = io.StringIO()
    benchmarks.print_gpt_benchmark({**result, "seconds": None, "ratio": None}, file=out)
    assert "did not reach 1.88 nats/char (val 1.8765)" in out.getvalue() and "ratio" not in out.getvalue()


# --- the VAE against the classic PyTorch example -------------------------------------------------------------


def tick(monkeypatch, clock: TickingClock) -> None:
    """The clock of the benchmark and of the course's training loop (course_utils.vae.fit_vae)."""
    monkeypatch.setattr(benchmarks, "time", clock)
    monkeypatch.setattr(vae, "time", clock)


def test_vae_benchmark_times_both_recipes_to_the_target(monkeypatch):
    tick(monkeypatch, TickingClock())
    lines = []
    result = benchmarks.vae_benchmark(target=1e6, max_epochs=1, evals_per_epoch=2, log=lines.append,
                                      data=(bar_images(256), bar_images(64, seed=1)))
    rows = result["rows"]
    assert rows["reference"]["epochs"] == 0.5 and rows["course cpu recipe"]["epochs"] == 0.5
    assert rows["reference"]["seconds"] > 0 and rows["course cpu recipe"]["seconds"] > 0
    assert result["ratio"] == pytest.approx(rows["course cpu recipe"]["seconds"] / rows["reference"]["seconds"])
    assert result["cpu_ratio"] is not None and result["cpu_ratio"] > 0
    assert any(line.startswith("ratio course / reference") for line in lines)
    never = benchmarks.vae_benchmark(target=-1.0, max_epochs=1, evals_per_epoch=1, log=lines.append,
                                     data=(bar_images(128), bar_images(32, seed=1)))
    assert never["ratio"] is None and not never["rows"]["reference"]["reached"]
    frozen = TickingClock()
    frozen.perf_counter = frozen.process_time = lambda: 0.0  # a timer too coarse to see a tiny run
    tick(monkeypatch, frozen)
    instant = benchmarks.vae_benchmark(target=1e6, max_epochs=1, evals_per_epoch=1, log=lines.append,
                                       data=(bar_images(128), bar_images(32, seed=1)))
    assert instant["rows"]["reference"]["seconds"] == 0 and instant["ratio"] is None and instant["cpu_ratio"] is None


def test_reference_vae_is_the_classic_example():
    model = benchmarks.ReferenceVAE()
    assert sum(p.numel() for p in model.parameters()) == 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 \
        + 400 * 784 + 784
    assert vae.evaluate(model, bar_images(8))["neg_elbo"] > 0


# --- the --bench flags of the command line -----------------------------------------------------------------------


def test_bench_flags_run_the_benchmarks_and_write_nothing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(benchmarks, "vae_benchmark", lambda **kw: calls.append(("vae", kw)) or {})
    monkeypatch.setattr(benchmarks, "gpt_benchmark", lambda **kw: calls.append(("gpt", kw)) or {})
    monkeypatch.setattr(benchmarks, "print_gpt_benchmark", lambda result: calls.append(("print", result)))
    assert train.main(["vae", "--bench", "--out", str(tmp_path)]) == 0
    assert train.main(["gpt", "--bench", "--out", str(tmp_path)]) == 0
    assert [c[0] for c in calls] == ["vae", "gpt", "print"] and calls[1][1]["recipe"] == "cpu"
    assert not list(tmp_path.iterdir())
