"""One Colab pattern for every notebook: a badge and a set-up cell.

The badge (first cell, tagged ``colab-badge``) opens the notebook's own path in
the repository named once, in ``pyproject.toml`` (``[tool.course] repository``).
The set-up cell (tagged ``colab-setup``, right after the title cell) clones the
course and installs ``course_utils`` only when running on Colab; it never
reinstalls torch (Colab's own satisfies the ranges in ``pyproject.toml``).

``python -m course_utils.colab check`` reports drift (exit 1);
``python -m course_utils.colab write`` repairs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

from course_utils import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib
BADGE_TAG = "colab-badge"
SETUP_TAG = "colab-setup"

SETUP_SOURCE = '''\
# Set-up. On Colab: clone the course and install its helpers (Colab's torch is kept).
# Anywhere else this cell does nothing: `make lab` has set everything up.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    if not os.path.isdir("/content/course"):
        subprocess.run(["git", "clone", "--depth", "1", "-b", "{branch}", "https://github.com/{repository}",
                        "/content/course"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/course"], check=True)
    sys.path.insert(0, "/content/course")\
'''


def read_pyproject(pyproject: Path = REPO_ROOT / "pyproject.toml") -> dict[str, Any]:
    """``pyproject.toml`` as a dict (``tomllib``; ``tomli`` on Python 3.10)."""
    with open(pyproject, "rb") as fh:
        return tomllib.load(fh)


def repository(pyproject: Path = REPO_ROOT / "pyproject.toml") -> tuple[str, str]:
    """``(owner/name, branch)`` from ``[tool.course]`` in ``pyproject.toml``."""
    values = read_pyproject(pyproject).get("tool", {}).get("course")
    if not values:
        raise ValueError(f"{pyproject}: no [tool.course] section naming the repository")
    repo = values.get("repository", "")
    if not isinstance(repo, str) or repo.count("/") != 1:
        raise ValueError(f"{pyproject}: [tool.course] repository must be 'owner/name', got {repo!r}")
    return repo, values.get("branch", "main")


def badge_source(notebook: Path, repo: str, branch: str) -> str:
    rel = notebook.resolve().relative_to(REPO_ROOT).as_posix()
    url = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{rel}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def _tagged(nb: nbformat.NotebookNode, tag: str) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]


def problems(notebook: Path) -> list[str]:
    """What is wrong with a notebook's Colab cells (empty when all is right)."""
    repo, branch = repository()
    nb = nbformat.read(notebook, as_version=4)
    found = []
    badges, setups = _tagged(nb, BADGE_TAG), _tagged(nb, SETUP_TAG)
    if badges != [0]:
        found.append(f"badge cell: expected one, first; found at {badges or 'nowhere'}")
    elif nb.cells[0].source.strip() != badge_source(notebook, repo, branch):
        found.append("badge cell points at the wrong repository, branch or path")
    if len(setups) != 1:
        found.append(f"set-up cell: expected one; found {len(setups)}")
    elif nb.cells[setups[0]].source.strip() != SETUP_SOURCE.format(repository=repo, branch=branch).strip():
        found.append("set-up cell differs from the course's pattern")
    elif nb.cells[setups[0]].cell_type != "code":
        found.append("set-up cell is not a code cell")
    return found


def write(notebook: Path) -> bool:
    """Insert or repair the badge and set-up cells. Returns True if the file changed."""
    if not problems(notebook):
        return False
    repo, branch = repository()
    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [c for c in nb.cells if not {BADGE_TAG, SETUP_TAG} & set(c.get("metadata", {}).get("tags", []))]
    badge = nbformat.v4.new_markdown_cell(badge_source(notebook, repo, branch), metadata={"tags": [BADGE_TAG]})
    setup = nbformat.v4.new_code_cell(
        SETUP_SOURCE.format(repository=repo, branch=branch), metadata={"tags": [SETUP_TAG]}
    )
    first_md = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(first_md + 1, setup)
    nb.cells.insert(0, badge)
    nbformat.write(nb, notebook)
    return True


def notebooks(root: Path = REPO_ROOT / "notebooks") -> list[Path]:
    return sorted(root.glob("[0-9][0-9]_*.ipynb"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.colab", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("check", "write"))
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/NN_*.ipynb)")
    args = parser.parse_args(argv)
    paths = args.paths or notebooks()
    bad = 0
    for path in paths:
        if args.command == "write":
            print(f"{path}: {'repaired' if write(path) else 'ok'}")
        elif found := problems(path):
            bad += 1
            print(f"{path}:\n  " + "\n  ".join(found))
        else:
            print(f"{path}: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
