"""course_utils.runtime: profiles, device choice, seeding, the environment report."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_utils import runtime


@pytest.mark.parametrize("value,expected", [("ci", "ci"), ("CPU", "cpu"), (" gpu ", "gpu")])
def test_profile_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_PROFILE", value)
    assert runtime.profile() == expected


def test_profile_default_follows_the_device(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("BINDER_LAUNCH_HOST", raising=False)
    monkeypatch.delenv("BINDER_REPO_URL", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.profile() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.profile() == "gpu"


def test_binder_gets_the_small_profile_unless_told_otherwise(monkeypatch):
    """Binder gives about 2 GB: the ci profile's peaks fit (docs/timings.json), the cpu profile's do not."""
    from course_utils import authoring

    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("BINDER_LAUNCH_HOST", "https://mybinder.org/")
    assert runtime.on_binder() and runtime.profile() == "ci"
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert runtime.profile() == "cpu"
    ci_peaks = [r["peak_mb"] for r in authoring.load_timings() if r["profile"] == "ci"]
    assert ci_peaks and max(ci_peaks) < 2000, "a ci notebook no longer fits Binder's 2 GB"


def test_unknown_profile_names_the_three(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(runtime.ProfileError, match="'fast'.*ci, cpu, gpu"):
        runtime.profile()


def test_by_profile_picks_the_active_value(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    assert runtime.by_profile(ci=1, cpu=5, gpu=20) == 1
    assert runtime.by_profile(ci=1, cpu=5, gpu=20, active="gpu") == 20
    with pytest.raises(runtime.ProfileError):
        runtime.by_profile(ci=1, cpu=5, gpu=20, active="tpu")
    with pytest.raises(TypeError):
        runtime.by_profile(ci=1, cpu=5)  # every profile must get a value


def test_device_override(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert runtime.get_device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="not one of cpu, cuda, mps"):
        runtime.get_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        runtime.get_device()


def test_device_default_prefers_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    assert runtime.get_device().type == "cpu"


def draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist(), torch.nn.Linear(4, 2).weight.sum().item()


def test_seeding_repeats_every_generator():
    runtime.seed_everything(123)
    first = draws()
    runtime.seed_everything(123)
    assert draws() == first
    runtime.seed_everything(124)
    assert draws() != first


def test_seed_everything_returns_a_seeded_generator():
    a = torch.rand(5, generator=runtime.seed_everything(7))
    b = torch.rand(5, generator=runtime.seed_everything(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        runtime.seed_everything(-1)


def test_environment_report(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    report = runtime.environment_report()
    assert report["profile"] == "ci" and report["packages"]["torch"] == torch.__version__.split("+")[0]
    assert set(report["data"]) >= {"fashion-mnist/train-images", "names", "tinyshakespeare"}
    text = runtime.format_report(report)
    assert "profile       ci" in text and "names" in text
    one = runtime.format_report({**report, "torch_threads": 1, "cpu_count": 1})
    two = runtime.format_report({**report, "torch_threads": 2, "cpu_count": 2})
    assert "1 torch thread, 1 CPU\n" in one and "2 torch threads, 2 CPUs\n" in two


def test_describe_hardware_names_the_cpu_and_threads():
    threads = torch.get_num_threads()
    cpu = torch.device("cpu")
    try:
        torch.set_num_threads(2)
        text = runtime.describe_hardware(cpu)
        assert text == f"{runtime.hardware_name(cpu)}, 2 torch threads"
        torch.set_num_threads(1)
        assert runtime.describe_hardware(cpu) == f"{runtime.hardware_name(cpu)}, 1 torch thread"
    finally:
        torch.set_num_threads(threads)
    assert f"{__import__('os').cpu_count()} cores" in text


def test_determinism_switches_are_saved_and_restored():
    saved = runtime.determinism_state()
    try:
        runtime.restore_determinism((False, True, False, False))
        runtime.seed_everything(0)
        assert runtime.determinism_state() == (True, False, True, True)
        runtime.seed_everything(0, deterministic=False)  # leaves them as they are
        assert runtime.determinism_state() == (True, False, True, True)
        runtime.restore_determinism((False, True, False, False))
        assert runtime.determinism_state() == (False, True, False, False)
    finally:
        runtime.restore_determinism(saved)


def test_training_time_gives_seconds_per_epoch_and_hardware():
    cpu = torch.device("cpu")
    assert runtime.training_time(100.04, 4, cpu) == {"seconds": 100.0, "seconds_per_epoch": 25.0,
                                                     "hardware": runtime.describe_hardware(cpu)}
    assert runtime.training_time(7.0, 0, cpu)["seconds_per_epoch"] == 7.0  # no epoch finished: all of it


def _report(**overrides):
    base = {"python": "3.11.7", "device": "cpu", "profile": "cpu", "cuda_available": False, "torch_cuda": None,
            "packages": {"torch": "2.14.1", "transformers": "5.24.0"}}
    return {**base, **overrides}


def test_known_traps_name_each_problem():
    assert runtime.known_traps(_report(), gpu_present=False) == []
    gpu_without_cuda = runtime.known_traps(_report(), gpu_present=True)
    assert len(gpu_without_cuda) == 1 and "cannot use it" in gpu_without_cuda[0]
    assert runtime.known_traps(_report(cuda_available=True, torch_cuda="12.8", device="cuda"), gpu_present=True) == []
    assert "nondeterministic" in runtime.known_traps(_report(device="mps"), gpu_present=False)[0]
    assert "COURSE_PROFILE=gpu" in runtime.known_traps(_report(profile="gpu"), gpu_present=False)[0]
    assert "3.10 to 3.12" in runtime.known_traps(_report(python="3.13.1"), gpu_present=False)[0]
    missing = runtime.known_traps(_report(packages={"torch": "2.14.1", "transformers": "not installed"}),
                                  gpu_present=False)
    assert missing == ["transformers is not installed: run make lab, or pip install -e . in the course folder"]


def test_report_command_prints_the_report_and_the_traps(capsys, monkeypatch):
    monkeypatch.setattr(runtime, "nvidia_gpu_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_PROFILE", "ci")
    assert runtime.main(["report", "--no-data"]) == 0
    out = capsys.readouterr().out
    assert "profile       ci" in out and "warning: an NVIDIA GPU is present" in out


def test_the_notebook_environment_is_defined_once_and_printed_for_make(capsys):
    from course_utils import authoring

    env = runtime.notebook_env("gpu")
    assert env == {**runtime.NOTEBOOK_ENV, "COURSE_PROFILE": "gpu"}
    assert env["COURSE_EXPECT_STUBS"] == "1" and env["HF_HUB_OFFLINE"] == "1" and env["COURSE_QUIET"] == "1"
    with pytest.raises(runtime.ProfileError, match="'tpu'"):
        runtime.notebook_env("tpu")
    assert authoring.PROFILES is runtime.PROFILES
    assert runtime.main(["notebook-env", "--profile", "ci"]) == 0
    words = capsys.readouterr().out.split()
    assert dict(w.split("=", 1) for w in words) == runtime.notebook_env("ci")
    assert runtime.main(["notebook-env"]) == 0
    assert "COURSE_PROFILE" not in capsys.readouterr().out


def test_the_makefile_reads_the_notebook_environment_from_runtime():
    from course_utils import REPO_ROOT

    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-m course_utils.runtime notebook-env" in makefile
    code = [line for line in makefile.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if any(f"{name}=" in line for name in runtime.NOTEBOOK_ENV)]
