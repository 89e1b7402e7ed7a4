"""The requirements, environment.yml and pyproject.toml agree; the entry points exist."""

from __future__ import annotations

import re

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


def requirements() -> dict[str, str]:
    return pins((ROOT / "requirements.txt").read_text().splitlines())


def pinned_python() -> str:
    """The Python the pins are for (environment.yml's ``python=X.Y``), whatever Python runs the test."""
    match = re.search(r"^\s*-\s*python=(\d+\.\d+)", (ROOT / "environment.yml").read_text(), re.M)
    assert match, "environment.yml must name its Python (python=X.Y)"
    return match.group(1)


def pyproject_requirements() -> list[Requirement]:
    project = read_pyproject()["project"]
    lines = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in lines]


def test_environment_yml_lists_the_same_pins_as_requirements():
    env = (ROOT / "environment.yml").read_text().split("- pip:")[1].splitlines()
    assert pins(env) == requirements()


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
