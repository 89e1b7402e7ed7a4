"""The set-up cell as Colab and Kaggle run it: a fresh runtime, the platform's own packages, a clean clone.

Each platform gets a fresh virtual environment prepared the way the platform
prepares it: torch, torchvision, transformers, matplotlib, ipywidgets, SciPy,
scikit-learn and a Jupyter kernel are already installed (the newest releases,
torch pinned to the CI build to spare a multi-GB download); the course's
requirements files are never used. Colab is recognised by ``google.colab``
being imported when the kernel starts (a stub module here), Kaggle by its
``KAGGLE_KERNEL_RUN_TYPE`` variable and its writable working folder.

Notebook 00 and the training notebook 01 then run top to bottom in the ``ci``
profile from a scratch folder, as a notebook opened from GitHub runs. Their
set-up cell clones the course from a local bare clone of this repository
(``COURSE_REPOSITORY``) into the platform's folder (``COURSE_CLOUD_HOME``),
installs it from ``pyproject.toml``'s ranges, and prints the profile and how
to change it. The data come from the test data cache (no download here).

Slow (two environments of several GB, hard-linked from one): ``make cloud-test``
runs it alone, ``.ci/run`` requires it, and the unit run skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import REPO_ROOT
from course_utils.runtime import notebook_env

if os.environ.get("COURSE_CLOUD_TESTS") != "1":
    pytest.skip("the cloud tests build their own environments: make cloud-test (COURSE_CLOUD_TESTS=1)",
                allow_module_level=True)

pytestmark = pytest.mark.slow
NOTEBOOKS = ("00_setup.ipynb", "01_generative_basics.ipynb")
PLATFORM_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "transformers", "matplotlib", "ipywidgets", "scipy",
                     "scikit-learn", "ipykernel", "nbclient", "nbformat"]
# What the learner's set-up must not bring: the test, lint and workshop tools.
NOT_FOR_LEARNERS = ("pytest", "nbval", "ruff", "jupyterhub", "playwright")
RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])
"""


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def base_env(tmp_path_factory) -> Path:
    """A runtime with the platforms' preinstalled packages (built once; each platform hard-links a copy)."""
    venv = tmp_path_factory.mktemp("cloud") / "base"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PLATFORM_PACKAGES])
    return venv


@pytest.fixture(scope="module")
def bare_clone(tmp_path_factory) -> str:
    """The course's committed state as a bare repository: what the set-up cell clones, instead of GitHub."""
    bare = tmp_path_factory.mktemp("remote") / "course.git"
    _run(["git", "clone", "--quiet", "--bare", str(REPO_ROOT), str(bare)])
    return bare.as_uri()


def _platform(base: Path, root: Path, name: str) -> tuple[Path, dict[str, str]]:
    """A copy of the base runtime (hard links) and the environment the platform's kernel starts with."""
    venv = root / f"{name}-runtime"
    _run(["cp", "-al", str(base), str(venv)])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({**notebook_env("ci"), "COURSE_DATA_DIR": str(REPO_ROOT / "data"),
                "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"})
    if name == "colab":  # Colab's kernel has imported google.colab before the first cell runs
        stub = root / "colab-stub"
        (stub / "google" / "colab").mkdir(parents=True)
        (stub / "google" / "__init__.py").write_text("")
        (stub / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s own module."""\n')
        (stub / "sitecustomize.py").write_text("import google.colab  # noqa: F401\n")
        env["PYTHONPATH"] = str(stub)
        env["COURSE_CLOUD_HOME"] = str(root / "content" / "course")
    else:  # Kaggle: its variables, and /kaggle/working as the writable folder
        env.update({"KAGGLE_KERNEL_RUN_TYPE": "Interactive", "KAGGLE_DATA_PROXY_TOKEN": "test"})
        env["COURSE_CLOUD_HOME"] = str(root / "kaggle" / "working" / "course")
    return venv, env


@pytest.mark.parametrize("name", ["colab", "kaggle"])
def test_a_fresh_cloud_runtime_runs_00_and_01(name, base_env, bare_clone, tmp_path):
    venv, env = _platform(base_env, tmp_path, name)
    env["COURSE_REPOSITORY"] = bare_clone
    python = str(venv / "bin" / "python")
    before = json.loads(_run([python, "-m", "pip", "list", "--format=json"], env=env).stdout)
    torch_before = next(p["version"] for p in before if p["name"] == "torch")
    scratch = tmp_path / "opened-from-github"  # the notebook is opened on its own, outside any clone
    scratch.mkdir()
    for notebook in NOTEBOOKS:
        copy = scratch / notebook
        copy.write_bytes((REPO_ROOT / "notebooks" / notebook).read_bytes())
        _run([python, "-c", RUNNER, str(copy), str(scratch)], env=env, cwd=scratch, timeout=1800)
        import nbformat

        nb = nbformat.read(copy, as_version=4)
        setup = next(c for c in nb.cells if "colab-setup" in c.metadata.get("tags", []))
        printed = "".join(o.get("text", "") for o in setup.outputs)
        assert f"{name.capitalize()}: the course is in {env['COURSE_CLOUD_HOME']}; profile ci." in printed, printed
        assert "To change it, run os.environ['COURSE_PROFILE']" in printed
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors
    after = {p["name"].lower(): p["version"] for p in json.loads(
        _run([python, "-m", "pip", "list", "--format=json"], env=env).stdout)}
    assert after["torch"] == torch_before, "the set-up cell must keep the runtime's torch"
    assert "course-utils" in after and "music21" in after
    assert not [p for p in NOT_FOR_LEARNERS if p in after], "a learner's set-up installs no test or workshop tools"
    assert (Path(env["COURSE_CLOUD_HOME"]) / ".git").is_dir()
