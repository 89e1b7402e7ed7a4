"""The requirements, environment.yml and pyproject.toml agree; the entry points exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from course_utils import REPO_ROOT as ROOT
from course_utils.colab import read_pyproject


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        if "==" in line:
            name, version = line.split("==")
            found[name.strip().lower()] = version.strip()
    return found


def requirements(name: str = "requirements.txt") -> dict[str, str]:
    """The pins of a requirements file, following its ``-r`` includes."""
    found, lines = {}, (ROOT / name).read_text().splitlines()
    for line in lines:
        if line.startswith("-r "):
            found |= requirements(line[3:].strip())
    return found | pins(lines)


def pinned_python() -> str:
    """The Python the pins are for (environment.yml's ``python=X.Y``), whatever Python runs the test."""
    match = re.search(r"^\s*-\s*python=(\d+\.\d+)", (ROOT / "environment.yml").read_text(), re.M)
    assert match, "environment.yml must name its Python (python=X.Y)"
    return match.group(1)


def pyproject_requirements() -> list[Requirement]:
    project = read_pyproject()["project"]
    lines = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in lines]


def test_environment_yml_is_the_learners_set():
    env = (ROOT / "environment.yml").read_text().split("- pip:")[1].splitlines()
    assert pins(env) == requirements("requirements-lab.txt")


def test_a_learner_installs_the_course_and_the_lab_only():
    """requirements-lab.txt pins exactly pyproject's dependencies and its text and lab extras; nothing for tests."""
    project = read_pyproject()["project"]
    extras = project["optional-dependencies"]
    wanted = {Requirement(r).name.lower() for r in project["dependencies"] + extras["text"] + extras["lab"]
              if Requirement(r).marker is None or Requirement(r).marker.evaluate({"python_version": pinned_python()})}
    assert set(requirements("requirements-lab.txt")) == wanted
    full = requirements()
    assert set(full) > wanted and {"pytest", "nbval", "ruff", "jupyterhub", "playwright"} <= set(full) - wanted
    assert "-r requirements-lab.txt" in (ROOT / "requirements.txt").read_text()


def test_make_admits_the_pythons_that_pyproject_and_every_pin_admit():
    """make's check lets through exactly the Pythons that pyproject.toml's range and every pinned package (their
    Requires-Python, read from the pinned versions installed here) admit: 3.10 is in the range (the oldest set of
    make versions runs on it), but numpy 2.4 and others of the pins need 3.11."""
    from importlib.metadata import PackageNotFoundError, metadata

    from packaging.specifiers import SpecifierSet

    specs = [SpecifierSet(read_pyproject()["project"]["requires-python"])]
    for line in (ROOT / "requirements-lab.txt").read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        if pin:
            try:
                meta = metadata(pin.group(1))
            except PackageNotFoundError:  # a pin for another platform
                continue
            if meta["Version"].split("+")[0] != pin.group(2):
                pytest.skip(f"{pin.group(1)} {meta['Version']} is installed, not the pinned {pin.group(2)} "
                            "(a make versions set): its Requires-Python says nothing about the pins")
            specs.append(SpecifierSet(meta.get("Requires-Python") or ""))
    listed = re.search(r"^PYTHONS := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    assert listed == [f"3.{minor}" for minor in range(8, 20) if all(f"3.{minor}.0" in spec for spec in specs)]


def test_every_pin_is_exact_and_inside_the_pyproject_ranges():
    pinned = requirements()
    reqs = pyproject_requirements()
    assert len(reqs) >= 10, "pyproject.toml lists too few dependencies: was it read?"
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate({"python_version": pinned_python()}):
            continue  # e.g. tomli, needed only before Python 3.11, which the pins are for
        name = req.name.lower()
        assert name in pinned, f"{name} is a dependency but requirements.txt does not pin it"
        assert req.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is outside {req.specifier}"
        assert "==" not in str(req.specifier), f"pyproject.toml should state a range for {name}, not a pin"


def test_package_version_matches_pyproject():
    import course_utils

    assert read_pyproject()["project"]["version"] == course_utils.__version__


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert re.search(r"^make test\s*$", (ROOT / ".ci/run").read_text(), re.M)
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lab:", "test:", "test-gpu:", "setup:"):
        assert re.search(rf"^{target}", makefile, re.M), target


def test_ci_cache_holds_downloads_only():
    workflow = (ROOT / ".github/workflows/ci.yml").read_text()
    block = workflow.split("actions/cache")[1].split("- name")[0]
    assert "!data/checkpoints" in block and "!data/README.md" in block, "the cache must exclude committed files"


def test_the_package_docstring_names_every_module():
    """A newcomer reads ``help(course_utils)`` to find the module of a topic: every module must be listed."""
    import course_utils

    modules = {p.stem for p in (ROOT / "course_utils").glob("*.py") if p.stem != "__init__"} | {"exercises"}
    missing = {m for m in modules if f"``{m}``" not in course_utils.__doc__}
    assert not missing, f"add {sorted(missing)} to the module list in course_utils/__init__.py"


def _make(*args: str, cwd=ROOT, **env: str):
    import os
    import subprocess

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True,
                          env={**clean, **env}, timeout=300)


def test_make_lab_stops_at_once_on_an_unsupported_python(tmp_path):
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\necho 3.9\n")
    old.chmod(0o755)
    venv = tmp_path / "venv"
    proc = _make("setup-lab", f"VENV={venv}", f"PYTHON={old}")
    assert proc.returncode != 0 and not venv.exists()
    assert f"the course needs Python 3.11-3.12, but '{old}' is Python 3.9" in proc.stderr
    assert "make setup-lab PYTHON=python3.12" in proc.stderr
    proc = _make("lab", f"VENV={venv}", "PYTHON=no-such-python3")
    assert proc.returncode != 0 and "'no-such-python3' was not found" in proc.stderr and not venv.exists()


@pytest.mark.slow
def test_make_check_and_lab_work_from_a_path_with_a_space(tmp_path):
    """The course in a folder named with a space: make check prints the report, make lab's command line holds."""
    import sys

    spaced = tmp_path / "my course"
    spaced.mkdir()
    for name in ("Makefile", "course_utils", "jupyter", "notebooks", "pyproject.toml", "requirements.txt",
                 "requirements-lab.txt"):
        (spaced / name).symlink_to(ROOT / name)
    venv = Path(sys.executable).parent.parent
    if not (venv / ".installed-lab").exists():
        pytest.skip("needs the .venv that make sets up (make test runs this test there)")
    env = {"COURSE_DATA_DIR": str(ROOT / "data"), "COURSE_QUIET": "1", "HF_HUB_OFFLINE": "1"}
    proc = _make("check", f"VENV={venv}", cwd=spaced, **env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "profile" in proc.stdout and "torch" in proc.stdout
    proc = _make("lab", f"VENV={venv}", "LAB_ARGS=--version", cwd=spaced, **env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"^\d+\.\d+\.\d+$", proc.stdout.strip().splitlines()[-1])


def test_binder_builds_the_learners_environment_and_fetches_the_data():
    env = (ROOT / "environment.yml").read_text()
    assert not [tool for tool in ("pytest", "nbval", "ruff", "jupyterhub", "playwright") if tool in env]
    post = ROOT / "postBuild"
    assert post.stat().st_mode & 0o111 and "python -m course_utils.data fetch" in post.read_text()
