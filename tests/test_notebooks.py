"""Every notebook: committed clean, follows the template, has the Colab cells."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils import authoring, colab

NOTEBOOKS = colab.notebooks()
LESSONS = [p for p in NOTEBOOKS if not p.name.startswith("00_")]


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
    assert authoring.START in nb.cells[1].source, "the first cell needs the generated time table (make timings)"
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


def test_time_tables_match_timings_json():
    assert authoring.write_tables(check=True) == [], "run: python -m course_utils.authoring tables"


HAND_TIME = re.compile(r"(?:about|takes|took|measured:?)\s+~?\d+(?:\.\d+)?\s*(?:s|min|minutes|seconds)\b")


def test_no_notebook_types_a_time_by_hand():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            text = cell.source
            if authoring.START in text:
                text = text[:text.index(authoring.START)] + text[text.index(authoring.END):]
            if cell.cell_type == "markdown":
                found = HAND_TIME.findall(text)
                assert not found, f"{path.name} cell {i} states a time by hand: {found}"


def _exercises(nb) -> list[tuple[int, int, int]]:
    """(stub, solution, checker) cell indices for each solution cell."""
    found = []
    for i, cell in enumerate(nb.cells):
        if authoring.is_solution(cell):
            stub = max(j for j in range(i) if nb.cells[j].cell_type == "code")
            check = min(j for j in range(i + 1, len(nb.cells)) if nb.cells[j].cell_type == "code")
            found.append((stub, i, check))
    return found


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_exercises_are_stubs_with_hidden_solutions_and_checkers(path: Path):
    nb = nbformat.read(path, as_version=4)
    exercises = _exercises(nb)
    assert len(exercises) >= 3, f"{path.name} has {len(exercises)} exercises; the course asks for at least three"
    for stub, solution, check in exercises:
        assert nb.cells[solution].metadata.get("jupyter", {}).get("source_hidden") is True, \
            f"{path.name} cell {solution}: the solution must be collapsed (jupyter.source_hidden)"
        stub_src = nb.cells[stub].source
        assert "NotImplementedError" in stub_src or re.search(r"=\s*\.\.\.", stub_src), \
            f"{path.name} cell {stub}: the exercise cell before a solution must be a stub (... or NotImplementedError)"
        assert "check_" in nb.cells[check].source, f"{path.name} cell {check}: a checker must follow the solution"


def test_student_build_removes_solutions_and_keeps_stubs(tmp_path):
    written = authoring.build_student(tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for original, student in zip(NOTEBOOKS, written, strict=True):
        before, after = nbformat.read(original, as_version=4), nbformat.read(student, as_version=4)
        solutions = sum(authoring.is_solution(c) for c in before.cells)
        assert len(after.cells) == len(before.cells) - solutions
        assert not any(authoring.is_solution(c) for c in after.cells)


def test_student_build_answers_an_unfinished_stub_with_a_plain_hint(tmp_path, monkeypatch):
    """Run the student build of 01 up to its first checker: the stub gets a hint, not a traceback."""
    from nbclient import NotebookClient

    monkeypatch.setenv("COURSE_PROFILE", "ci")
    monkeypatch.setenv("COURSE_QUIET", "1")
    monkeypatch.delenv("COURSE_STRICT_CHECKS", raising=False)  # strict mode would turn the hint into an error
    path = next(p for p in LESSONS if p.name.startswith("01_"))
    original = nbformat.read(path, as_version=4)
    _, _, first_check = _exercises(original)[0]
    nb = authoring.student_notebook(path)
    cut = next(i for i, c in enumerate(nb.cells) if c.source == original.cells[first_check].source)
    nb.cells = nb.cells[:cut + 1]
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError if any cell, the checker included, raises
    outputs = nb.cells[cut].outputs
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "not done yet" in text and "❌" in text, text
    assert not any(o.output_type == "error" for o in outputs)


def test_readme_launch_links_are_generated_from_the_repository_setting():
    text = colab.README.read_text(encoding="utf-8")
    assert colab.readme_with_links(text, NOTEBOOKS) == text, "run: python -m course_utils.colab write"
    repo, branch = colab.repository()
    links = colab.launch_links(NOTEBOOKS[0], repo, branch)
    rel = "notebooks/" + NOTEBOOKS[0].name
    assert links == {
        "Colab": f"https://colab.research.google.com/github/{repo}/blob/{branch}/{rel}",
        "Kaggle": f"https://kaggle.com/kernels/welcome?src=https://github.com/{repo}/blob/{branch}/{rel}",
        "view": f"https://nbviewer.org/github/{repo}/blob/{branch}/{rel}",
    }
    for path in NOTEBOOKS:
        assert f"/blob/{branch}/notebooks/{path.name})" in text


def test_site_renders_executed_pages_with_links_and_fails_on_an_error(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    ok = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 90 · Fine\n\nSee [the next](91_broken.ipynb)."),
        nbformat.v4.new_code_cell("print(6 * 7)")])
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 91 · Broken"),
                                            nbformat.v4.new_code_cell("1 / 0")])
    for name, nb in (("90_fine.ipynb", ok), ("91_broken.ipynb", broken)):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, src / name)
    out = tmp_path / "site"
    pages = authoring.build_site(out, "ci", [src / "90_fine.ipynb"])
    html = pages[0].read_text()
    assert "42" in html and 'href="91_broken.html' in html  # executed, and linked to the other page
    assert "90 · Fine" in (out / "index.html").read_text()
    with pytest.raises(authoring.SiteError, match=r"91_broken.ipynb: cells \[1\] raised"):
        authoring.build_site(out, "ci", [src / "90_fine.ipynb", src / "91_broken.ipynb"])
    assert (out / "91_broken.html").exists() and "(failed)" in (out / "index.html").read_text()
