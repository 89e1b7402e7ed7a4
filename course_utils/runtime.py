"""Device, seeding, the ``COURSE_PROFILE`` switch and the notebooks' test environment (taught in notebook 00).

One switch picks sizes and epochs for every notebook:

- ``ci``: the smallest run that still shows learning; fits the CI budget.
- ``cpu``: a laptop without a GPU, a few minutes per notebook.
- ``gpu``: a Colab T4 or better; full data and longer training.

``COURSE_PROFILE`` sets it; by default it is ``gpu`` on a CUDA device, ``ci`` on
Binder (about 2 GB of memory, below the ``cpu`` profile's peaks) and ``cpu``
otherwise. Notebooks choose their hyperparameters with :func:`by_profile`.

:data:`PROFILES` and :data:`NOTEBOOK_ENV` (the environment the notebooks run
in under the tests) are defined here only: ``make test`` reads the environment
with ``python -m course_utils.runtime notebook-env``, and the authoring tools
and the tests import it.
"""

from __future__ import annotations

import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, TypeVar

import numpy as np
import torch

from course_utils import data
from course_utils.cli import OneLineParser

#: The three profiles, smallest first.
PROFILES = ("ci", "cpu", "gpu")
#: What every test run of a notebook sets (make test, make timings, the site, the workshop and cloud checks):
#: no progress bars, every exercise checker must meet its unfinished stub, the Hub stays offline.
NOTEBOOK_ENV = {"COURSE_QUIET": "1", "COURSE_EXPECT_STUBS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "PYTHONWARNINGS": "ignore::DeprecationWarning"}
DEVICES = ("cpu", "cuda", "mps")
T = TypeVar("T")


class ProfileError(ValueError):
    """Raised for an unknown ``COURSE_PROFILE`` value."""


def get_device() -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU.

    ``COURSE_DEVICE`` overrides the choice (``cpu``, ``cuda``, ``cuda:1``, ``mps``);
    asking for a device that is not present is an error, not a silent fallback.
    """
    wanted = os.environ.get("COURSE_DEVICE", "").strip().lower()
    if wanted:
        kind = wanted.split(":")[0]
        if kind not in DEVICES:
            raise ValueError(f"COURSE_DEVICE={wanted!r} is not one of {', '.join(DEVICES)}")
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"COURSE_DEVICE={wanted!r} but no CUDA device is available")
        if kind == "mps" and not _mps_available():
            raise RuntimeError(f"COURSE_DEVICE={wanted!r} but Apple MPS is not available")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def on_binder() -> bool:
    """True on a Binder (BinderHub sets ``BINDER_LAUNCH_HOST`` and ``BINDER_REPO_URL`` in every session)."""
    return bool(os.environ.get("BINDER_LAUNCH_HOST") or os.environ.get("BINDER_REPO_URL"))


def profile() -> str:
    """The active profile: ``COURSE_PROFILE`` if set, else ``gpu`` on CUDA, ``ci`` on Binder, else ``cpu``."""
    value = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not value:
        return "gpu" if torch.cuda.is_available() else "ci" if on_binder() else "cpu"
    if value not in PROFILES:
        raise ProfileError(f"COURSE_PROFILE={value!r} is not a known profile; use one of: {', '.join(PROFILES)}")
    return value


def by_profile(*, ci: T, cpu: T, gpu: T, active: str | None = None) -> T:
    """Pick a value for the active profile, e.g. ``EPOCHS = by_profile(ci=1, cpu=5, gpu=20)``."""
    name = profile() if active is None else active
    if name not in PROFILES:
        raise ProfileError(f"profile {name!r} is not a known profile; use one of: {', '.join(PROFILES)}")
    return {"ci": ci, "cpu": cpu, "gpu": gpu}[name]


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a seeded CPU generator.

    With ``deterministic`` the cheap determinism switches are set too (cuDNN picks
    deterministic kernels, no benchmark autotuning); ops that have no deterministic
    version still run, with a warning rather than an error. These switches are
    global to the process, on purpose: a notebook is one process whose numbers must
    repeat from run to run. ``deterministic=False`` leaves them as they are;
    :func:`restore_determinism` puts back what :func:`determinism_state` saved.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def determinism_state() -> tuple[bool, bool, bool, bool]:
    """The process-wide switches :func:`seed_everything` sets (for :func:`restore_determinism`)."""
    return (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
            torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())


def restore_determinism(state: tuple[bool, bool, bool, bool]) -> None:
    """Put back the switches saved by :func:`determinism_state`."""
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, enabled, warn_only = state
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


REPORTED_PACKAGES = (
    "torch", "torchvision", "numpy", "transformers", "tokenizers",
    "safetensors", "matplotlib", "ipywidgets", "tqdm",
    "music21",  # its corpus holds the chorale files: notebook 00 counts 410 of them
)


def environment_report(check_data: bool = True) -> dict[str, Any]:
    """What notebook 00 shows: versions, device, threads, profile and the data files.

    With ``check_data`` each registered data file is looked up (and verified by
    checksum) in the cache; nothing is downloaded.
    """
    device = get_device()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in REPORTED_PACKAGES},
        "device": str(device),
        "device_name": hardware_name(device),
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "profile": profile(),
        "on_colab": on_colab(),
    }
    if check_data:
        report["data"] = {row.name: row.state for row in data.status()}
    return report


def hardware_name(device: torch.device | None = None) -> str:
    """A readable name for the device: the GPU's name, else the CPU model and core count."""
    device = device or get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def describe_hardware(device: torch.device | None = None) -> str:
    """What a training run used, for a checkpoint card: the GPU's name, or the CPU, cores and torch threads."""
    device = device or get_device()
    name = hardware_name(device)
    if device.type == "cuda":
        return f"{name} (CUDA)"
    threads = torch.get_num_threads()
    return f"{name}, {threads} torch thread{'' if threads == 1 else 's'}"


def training_time(seconds: float, epochs: int, device: torch.device | None = None) -> dict[str, Any]:
    """A card's ``seconds``, ``seconds_per_epoch`` and ``hardware``: how long a training run took, and on what."""
    return {"seconds": round(seconds, 1), "seconds_per_epoch": round(seconds / max(epochs, 1), 1),
            "hardware": describe_hardware(device)}


def on_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _count(n: int, thing: str) -> str:
    """``n`` things, plural only when ``n`` is not 1 ("1 torch thread", "2 CPUs")."""
    return f"{n} {thing}{'' if n == 1 else 's'}"


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned text lines, for printing in a notebook."""
    lines = [
        f"{'python':<14}{report['python']}  ({report['platform']})",
        f"{'device':<14}{report['device']}  ({report['device_name']})",
        f"{'threads':<14}{_count(report['torch_threads'], 'torch thread')}, {_count(report['cpu_count'], 'CPU')}",
        f"{'profile':<14}{report['profile']}",
        f"{'on Colab':<14}{report['on_colab']}",
    ]
    lines += [f"{name:<14}{version}" for name, version in report["packages"].items()]
    for name, state in report.get("data", {}).items():
        lines.append(f"{'data':<14}{name:<28}{state}")
    return "\n".join(lines)


# --- known traps, and the report a bug report asks for -----------------------------------------------


def nvidia_gpu_present() -> bool:
    """True if the machine has an NVIDIA GPU, whatever torch can see (the driver's files or ``nvidia-smi -L``)."""
    if os.path.isdir("/proc/driver/nvidia/gpus") and os.listdir("/proc/driver/nvidia/gpus"):
        return True
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def known_traps(report: dict[str, Any], gpu_present: bool | None = None) -> list[str]:
    """Warnings about set-ups that are known to go wrong, for :func:`format_report` and bug reports."""
    warnings = []
    gpu_present = nvidia_gpu_present() if gpu_present is None else gpu_present
    if gpu_present and not report.get("cuda_available"):
        cuda = report.get("torch_cuda") or "none"
        warnings.append(f"an NVIDIA GPU is present but this torch cannot use it (torch built with CUDA: {cuda}); "
                        "install a CUDA build of torch, or on Colab keep Colab's own torch")
    if report.get("device", "").startswith("mps"):
        warnings.append("Apple MPS: some operations are nondeterministic or fall back to the CPU, so seeded runs can "
                        "differ from the course's printed numbers; set COURSE_DEVICE=cpu to reproduce them exactly")
    if report.get("profile") == "gpu" and not report.get("cuda_available"):
        warnings.append("COURSE_PROFILE=gpu without a CUDA device: the notebooks will run the GPU sizes on the CPU "
                        "(hours); use COURSE_PROFILE=cpu")
    major, minor = (int(x) for x in report.get("python", "3.11").split(".")[:2])
    if not (3, 10) <= (major, minor) <= (3, 12):
        warnings.append(f"Python {report.get('python')}: the course is tested on Python 3.10 to 3.12")
    for name in ("torch", "transformers"):
        if report.get("packages", {}).get(name) == "not installed":
            warnings.append(f"{name} is not installed: run make lab, or pip install -e . in the course folder")
    return warnings


def notebook_env(profile_name: str = "ci") -> dict[str, str]:
    """:data:`NOTEBOOK_ENV` with ``COURSE_PROFILE``: the variables a test run of a notebook adds to the environment."""
    if profile_name not in PROFILES:
        raise ProfileError(f"profile {profile_name!r} is not a known profile; use one of: {', '.join(PROFILES)}")
    return {**NOTEBOOK_ENV, "COURSE_PROFILE": profile_name}


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m course_utils.runtime",
                           description="the environment report a bug report asks for; the notebooks' "
                                       "test environment (notebook-env, for the Makefile)")
    parser.add_argument("command", choices=["report", "notebook-env"])
    parser.add_argument("--no-data", action="store_true", help="report: skip checking the data files")
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="notebook-env: add COURSE_PROFILE (default: leave it to the caller)")
    args = parser.parse_args(argv)
    if args.command == "notebook-env":  # shell words: make test puts them before the nbval command
        env = NOTEBOOK_ENV if args.profile is None else notebook_env(args.profile)
        print(" ".join(f"{name}={shlex.quote(value)}" for name, value in env.items()))
        return 0
    report = environment_report(check_data=not args.no_data)
    print(format_report(report))
    traps = known_traps(report)
    for warning in traps:
        print(f"warning: {warning}")
    if not traps:
        print("no known traps found")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
