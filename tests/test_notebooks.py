"""Every notebook: committed clean, follows the template, has the Colab cells."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils import colab

NOTEBOOKS = colab.notebooks()


def test_the_course_has_its_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names and names[0] == "00_setup.ipynb"
    assert names == sorted(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells {dirty} carry outputs or execution counts: clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_and_setup_cell(path: Path):
    assert colab.problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_follows_the_template(path: Path):
    nb = nbformat.read(path, as_version=4)
    number = path.name[:2]
    assert nb.cells[1].cell_type == "markdown" and nb.cells[1].source.startswith(f"# {number} · ")
    for name in ("ci", "cpu", "gpu"):
        assert re.search(rf"^\|\s*`?{name}`?\s*\|", nb.cells[1].source, re.M), f"time table lacks a {name} row"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].cell_type == "code" and "by_profile" in params[0].source
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"^## Summary", prose, re.M) and re.search(r"^## References", prose, re.M)


def test_colab_check_finds_a_wrong_path_and_write_repairs_it(tmp_path, monkeypatch):
    src = NOTEBOOKS[0]
    copy = src.parent / "99_copy_for_test.ipynb"
    shutil.copy(src, copy)
    try:
        assert any("wrong repository, branch or path" in p for p in colab.problems(copy))
        nb = nbformat.read(copy, as_version=4)
        nb.cells = [c for c in nb.cells if "colab-setup" not in c.metadata.get("tags", [])]
        nbformat.write(nb, copy)
        assert any("set-up cell" in p for p in colab.problems(copy))
        assert colab.write(copy) and colab.problems(copy) == []
        assert not colab.write(copy)
    finally:
        copy.unlink()


def test_setup_cell_installs_only_on_colab_and_never_torch():
    source = colab.SETUP_SOURCE
    assert 'if "google.colab" in sys.modules:' in source
    assert "torch" not in source.split("import sys", 1)[1].replace("Colab's torch", "")
