"""Every notebook: committed clean, follows the template, has the Colab cells."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils import authoring, colab, exercises

NOTEBOOKS = colab.notebooks()
LESSONS = [p for p in NOTEBOOKS if not p.name.startswith("00_")]


def import_exercise_modules() -> None:
    """Register every notebook's checkers (the notebooks import them; the tests import them all)."""
    import importlib

    for module in ("setup", "basics", "gan", "vae", "diffusion", "gpt", "hf", "evaluation"):
        importlib.import_module(f"course_utils.exercises.{module}")


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
def test_committed_as_jupyter_writes_it(path: Path):
    """Sorted keys, one-space indent, a final newline: what nbformat writes, so a save in JupyterLab changes nothing."""
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=1, ensure_ascii=False, sort_keys=True) + "\n", (
        f"{path.name} is not in nbformat's layout: write it with nbformat.write (or json.dumps(..., indent=1, "
        "ensure_ascii=False, sort_keys=True) + a newline)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_and_setup_cell(path: Path):
    assert colab.problems(path) == []


def _sections(nb) -> list[tuple[int, str]]:
    """(cell index, heading) of every level-2 heading."""
    return [(i, line) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
            for line in c.source.splitlines() if line.startswith("## ")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_follows_the_template(path: Path):
    nb = nbformat.read(path, as_version=4)
    number = path.name[:2]
    title = nb.cells[1].source
    assert nb.cells[1].cell_type == "markdown" and title.startswith(f"# {number} · ")
    assert authoring.RUNTIME_START in title, "the first cell needs the generated run-time line (make timings)"
    assert not re.search(r"^\|", title, re.M), "no table on the first screen: the time table is in the last section"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].cell_type == "code" and "by_profile" in params[0].source
    headings = [h for _, h in _sections(nb)]
    assert "## Summary" in headings and "## References" in headings
    assert headings[-1] == authoring.MAINTAINERS, f"the last section must be '{authoring.MAINTAINERS}'"
    assert headings.index("## References") < len(headings) - 1
    last = next(i for i, h in _sections(nb) if h == authoring.MAINTAINERS)
    assert any(authoring.TABLE_START in c.source for c in nb.cells[last:]), "the time table belongs in the last section"


# Maintainers' matter: words that belong in "For instructors and maintainers" (or docs/), never in a learner's path.
MAINTAINER_WORDS = re.compile(r"--ship|sha256|nbval|make test|set_num_threads|foreach|browser-test|COURSE_EXPECT"
                              r"|\bCI\b|\bthe tests\b|checkpoint cards?|\bcards?\b")


def _learner_path(nb) -> list[tuple[int, str]]:
    """(index, text) of the cells before the maintainers' section: markdown whole, code by its comments only."""
    end = next((i for i, h in _sections(nb) if h == authoring.MAINTAINERS), len(nb.cells))
    found = []
    for i, cell in enumerate(nb.cells[:end]):
        if cell.cell_type == "markdown":
            found.append((i, cell.source))
        elif "colab-setup" not in cell.metadata.get("tags", []):
            found.append((i, "\n".join(re.findall(r"#.*$", cell.source, re.M))))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_maintainers_matter_stays_out_of_the_learners_path(path: Path):
    nb = nbformat.read(path, as_version=4)
    found = [(i, m.group(0)) for i, text in _learner_path(nb) for m in MAINTAINER_WORDS.finditer(text)]
    assert not found, f"{path.name}: move these to '{authoring.MAINTAINERS}' or docs/: {found}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_are_short(path: Path):
    """One idea per code cell (about 20 lines); long prose is broken up by a list, a table, maths or code."""
    nb = nbformat.read(path, as_version=4)
    imports = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                   and "colab-setup" not in c.metadata.get("tags", []))
    for i, cell in enumerate(nb.cells):
        lines = cell.source.strip().splitlines()
        if cell.cell_type == "code":
            limit = 30 if i == imports or "parameters" in cell.metadata.get("tags", []) else 20
            assert len(lines) <= limit, f"{path.name} cell {i}: {len(lines)} lines of code (at most {limit})"
        elif len(cell.source.split()) > 200:
            broken_up = re.search(r"^\s*(?:[-*] |\d+\. |\|)|^```|\$\$|!\[", cell.source, re.M)
            assert broken_up, f"{path.name} cell {i}: {len(cell.source.split())} words of plain prose (at most 200)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_tab_in_prose(path: Path):
    """A TAB in markdown is usually a LaTeX escape gone wrong ("\\theta" written as "\\t" + "heta")."""
    nb = nbformat.read(path, as_version=4)
    assert not [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "\t" in c.source]


def test_colab_write_mends_a_stale_setup_cell_in_place():
    src = NOTEBOOKS[-1]
    copy = src.parent / "99_copy_for_test.ipynb"
    shutil.copy(src, copy)
    try:
        nb = nbformat.read(copy, as_version=4)
        setup = next(i for i, c in enumerate(nb.cells) if "colab-setup" in c.metadata.get("tags", []))
        nb.cells.insert(setup, nbformat.v4.new_markdown_cell("an introduction between the title and the set-up"))
        nb.cells[setup + 1].source += "\n# a stale line"
        nbformat.write(nb, copy)
        before = [c.get("id") for c in nbformat.read(copy, as_version=4).cells]
        assert colab.write(copy) and colab.problems(copy) == []
        after = nbformat.read(copy, as_version=4).cells
        assert [c.get("id") for c in after] == before  # nothing moved, no cell got a new id
        assert "a stale line" not in after[setup + 1].source
    finally:
        copy.unlink()


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


def test_setup_cell_installs_only_on_colab_or_kaggle_and_never_torch():
    source = colab.SETUP_SOURCE
    assert '"google.colab" in sys.modules' in source and '"KAGGLE_KERNEL_RUN_TYPE" in os.environ' in source
    assert "if CLOUD:" in source and "requirements" not in source
    assert "torch" not in source.split("import sys", 1)[1].replace("runtime's torch", "")
    assert len(source.splitlines()) <= 20


def test_time_tables_match_timings_json():
    assert authoring.write_tables(check=True) == [], "run: python -m course_utils.authoring tables"


HAND_TIME = re.compile(r"(?:about|takes|took|measured:?)\s+~?\d+(?:\.\d+)?\s*(?:s|min|minutes|seconds)\b")


def test_no_notebook_types_a_time_by_hand():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            text = cell.source
            for start, end in ((authoring.START, authoring.END), (authoring.TABLE_START, authoring.TABLE_END),
                               (authoring.RUNTIME_START, authoring.RUNTIME_END)):
                if start in text:  # generated from docs/timings.json, not typed
                    text = text[:text.index(start)] + text[text.index(end):]
            if cell.cell_type == "markdown":
                found = HAND_TIME.findall(text)
                assert not found, f"{path.name} cell {i} states a time by hand: {found}"


EXERCISE = re.compile(r"^#{3,4} Exercise\b", re.M)
CHECK_CALL = re.compile(r"\b(check_\w+)\((\w+)\)")


def exercises_of(nb) -> list[dict]:
    """Each exercise: its markdown cell, the stub after it, the checker call after the stub."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or not EXERCISE.search(cell.source):
            continue
        code = [j for j in range(i + 1, len(nb.cells)) if nb.cells[j].cell_type == "code"]
        stub, check = code[0], code[1]
        call = CHECK_CALL.search(nb.cells[check].source)
        found.append({"text": i, "stub": stub, "check": check, "checker": call and call.group(1),
                      "answer": call and call.group(2)})
    return found


def _significant_lines(source: str) -> set[str]:
    """The lines of a solution's body worth comparing: long, not comments, not the signature or docstring."""
    body = source.split(":\n", 1)[1] if ":\n" in source else source
    return {line.strip() for line in body.splitlines()
            if len(line.strip()) >= 25 and not line.strip().startswith(("#", '"""', "def ", "import ", "from "))}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_are_stubs_then_checkers_with_solutions_on_request(path: Path):
    nb = nbformat.read(path, as_version=4)
    found = exercises_of(nb)
    least = 1 if path.name.startswith("00_") else 3
    assert len(found) >= least, f"{path.name} has {len(found)} exercises; at least {least}"
    import_exercise_modules()
    for ex in found:
        where = f"{path.name} cell {ex['stub']}"
        stub = nb.cells[ex["stub"]].source
        assert ex["checker"] in exercises.CHECKERS, f"{where}: the cell after the stub must call a checker"
        name = exercises.SOLUTIONS[ex["checker"]]
        assert re.search(rf"^def {name}\(", stub, re.M) and "raise NotImplementedError" in stub, \
            f"{where}: the stub defines {name}(...) with the body `raise NotImplementedError`"
        assert ex["answer"] == name, f"{where}: the checker must be given {name}"
        assert f'show_solution("{name}")' in nb.cells[ex["text"]].source, \
            f"{path.name} cell {ex['text']}: say how to ask for the solution: show_solution(\"{name}\")"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_is_in_a_cell_or_copied_from_one(path: Path):
    """No cell holds or shows a solution, and no solution can be copied from a cell of the notebook."""
    nb = nbformat.read(path, as_version=4)
    assert not [i for i, c in enumerate(nb.cells) if "solution" in c.metadata.get("tags", [])]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert not [s for s in code if "show_solution(" in s], "a cell that shows a solution would show it in Run All"
    cell_lines = {line.strip() for s in code for line in s.splitlines()}
    import_exercise_modules()
    for ex in exercises_of(nb):
        source, _ = exercises.solution_source(ex["checker"])
        lines = _significant_lines(source)
        copied = lines & cell_lines
        assert len(copied) <= len(lines) / 2, f"{path.name}: the solution of {ex['checker']} is on screen: {copied}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_later_cell_uses_an_exercise_answer(path: Path):
    nb = nbformat.read(path, as_version=4)
    for ex in exercises_of(nb):
        later = [j for j in range(ex["check"] + 1, len(nb.cells)) if nb.cells[j].cell_type == "code"
                 and re.search(rf"\b{ex['answer']}\b", nb.cells[j].source)]
        assert not later, f"{path.name}: cells {later} use {ex['answer']}, which only the learner writes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_with_exercises_imports_show_solution(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not exercises_of(nb) or re.search(r"^from course_utils.exercises import .*\bshow_solution\b", code, re.M)


@pytest.mark.slow
def test_run_all_shows_every_exercise_of_00_as_not_done_and_no_solution(monkeypatch):
    """Execute 00 as a learner's Run All does (no COURSE_EXPECT_STUBS): each checker prints not done yet."""
    from nbclient import NotebookClient

    monkeypatch.setenv("COURSE_PROFILE", "ci")
    monkeypatch.setenv("COURSE_QUIET", "1")
    monkeypatch.delenv("COURSE_EXPECT_STUBS", raising=False)
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS[0].parent)}}).execute()
    import_exercise_modules()
    for ex in exercises_of(nb):
        outputs = nb.cells[ex["check"]].outputs
        text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
        assert text.strip().startswith("⬜ not done yet"), text
    shown = "\n".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for ex in exercises_of(nb):
        source, _ = exercises.solution_source(ex["checker"])
        assert not _significant_lines(source) & {line.strip() for line in shown.splitlines()}


def test_00_says_once_how_to_get_a_solution():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "show_solution(" in prose and "course_utils/solutions" in prose


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
