"""The requirements, environment.yml and pyproject.toml agree; the entry points exist."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


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


def pyproject_requirements() -> list[Requirement]:
    text = (ROOT / "pyproject.toml").read_text()
    blocks = re.findall(r"^dependencies = \[(.*?)\]", text, re.M | re.S)
    extras = text.split("[project.optional-dependencies]")[1].split("\n[")[0]
    blocks += re.findall(r"^\w+ = \[(.*?)\]", extras, re.M | re.S)
    return [Requirement(r) for block in blocks for r in re.findall(r'"([^"]+)"', block)]


def test_environment_yml_lists_the_same_pins_as_requirements():
    env = (ROOT / "environment.yml").read_text().split("- pip:")[1].splitlines()
    assert pins(env) == requirements()


def test_every_pin_is_exact_and_inside_the_pyproject_ranges():
    pinned = requirements()
    reqs = pyproject_requirements()
    assert reqs, "pyproject.toml lists no dependencies"
    for req in reqs:
        name = req.name.lower()
        assert name in pinned, f"{name} is a dependency but requirements.txt does not pin it"
        assert req.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is outside {req.specifier}"
        assert "==" not in str(req.specifier), f"pyproject.toml should state a range for {name}, not a pin"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert re.search(r"^make test\s*$", (ROOT / ".ci/run").read_text(), re.M)
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lab:", "test:", "test-gpu:", "setup:"):
        assert re.search(rf"^{target}", makefile, re.M), target
