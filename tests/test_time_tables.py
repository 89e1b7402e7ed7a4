"""The generated time tables (course_utils.authoring): their format, and docs/timings.json they are made from.

``tests/test_notebooks.py`` checks that every table equals what ``docs/timings.json`` generates, and
``tests/test_workshop.py`` checks the instructor's schedules; this file checks what a reader sees: a
well-formed Markdown table per block, one row per profile or notebook, times and memory in one format.
"""

from __future__ import annotations

import datetime as _dt
import json
import re

import nbformat
import pytest

from course_utils import REPO_ROOT, authoring
from course_utils.colab import notebooks
from course_utils.runtime import PROFILES

TIME = re.compile(r"^(\d+ s|\d+\.\d min)$")  # under 2 minutes in whole seconds, from 2 minutes in tenths of minutes
MEMORY = re.compile(r"^\d+\.\d GB$")
DASH = "–"  # an en dash: no run yet
RUN_KEYS = {"notebook": str, "profile": str, "seconds": (int, float), "peak_mb": int, "machine": str, "cores": int,
            "python": str, "torch": str, "date": str}


def run(notebook: str, profile: str, seconds: float, peak_mb: int = 1536, date: str = "2026-01-02",
        machine: str = "Test CPU, 2 cores") -> dict:
    return {"notebook": notebook, "profile": profile, "seconds": seconds, "peak_mb": peak_mb, "machine": machine,
            "cores": 2, "python": "3.11.7", "torch": "2.4.0", "date": date}


def table_rows(block: str) -> list[list[str]]:
    """The cells of a Markdown table's body, after checking that the header, the rule and every row agree."""
    lines = [line for line in block.splitlines() if line.startswith("|")]
    assert len(lines) >= 3, f"no table in:\n{block}"
    header, rule, *body = ([c.strip() for c in line.strip().strip("|").split("|")] for line in lines)
    assert all(set(c) == {"-"} for c in rule), f"the second line must be the rule: {lines[1]}"
    for row in [rule, *body]:
        assert len(row) == len(header), f"{len(row)} cells under {len(header)} headings: {row}"
    return body


def test_seconds_are_written_in_seconds_then_minutes():
    assert [authoring.format_seconds(s) for s in (0.4, 7.1, 119.4, 120, 619.6)] == \
        ["0 s", "7 s", "119 s", "2.0 min", "10.3 min"]


def test_a_notebooks_table_has_one_row_per_profile_with_its_latest_run():
    runs = [run("02_gan", "ci", 50.5, 1635), run("02_gan", "cpu", 300, date="2026-01-01"),
            run("02_gan", "cpu", 619.6, 1522, date="2026-02-01"), run("03_vae", "gpu", 9)]
    block = authoring.notebook_table("02_gan", runs)
    assert block.startswith(authoring.TABLE_START + "\n") and block.endswith("\n" + authoring.TABLE_END)
    rows = table_rows(block)
    assert [r[0] for r in rows] == [f"`{p}`" for p in PROFILES]
    assert rows[0][2:] == ["50 s", "1.6 GB", "Test CPU, 2 cores (2026-01-02)"]
    assert rows[1][2:] == ["10.3 min", "1.5 GB", "Test CPU, 2 cores (2026-02-01)"]  # the newer of two cpu runs
    assert rows[2][2:] == [DASH, DASH, "no run yet"]  # another notebook's gpu run is not this one's


def test_the_run_time_line_is_one_line_between_its_markers():
    line = authoring.runtime_line("02_gan", [run("02_gan", "cpu", 619.6), run("02_gan", "ci", 50)])
    assert "\n" not in line
    assert line == (f"{authoring.RUNTIME_START}*Running every cell: about 10.3 min on a CPU in the `cpu` profile "
                    f"(measured on Test CPU, 2 cores); not measured yet on a Colab GPU.*{authoring.RUNTIME_END}")
    assert "not measured yet on a laptop CPU" in authoring.runtime_line("02_gan", [])


def test_the_course_table_has_a_column_per_profile_and_the_peak_over_them():
    runs = [run("00_setup", "ci", 7.1, 1364), run("00_setup", "cpu", 13, 1159), run("01_x", "gpu", 200, 4096,
                                                                                        machine="Tesla T4")]
    full = authoring.course_table(runs, ["00_setup", "01_x"])
    assert full.startswith(authoring.START + "\n") and full.endswith("\n" + authoring.END)
    assert table_rows(full) == [["`00_setup`", "7 s", "13 s", DASH, "1.3 GB"],
                                ["`01_x`", DASH, DASH, "3.3 min", "4.0 GB"]]
    assert "`ci` on Test CPU, 2 cores; `cpu` on Test CPU, 2 cores; `gpu` on Tesla T4." in full
    learner = authoring.course_table(runs, ["00_setup"], profiles=("cpu", "gpu"))  # notebook 00's
    assert learner.splitlines()[1] == "| notebook | `cpu` | `gpu` | peak memory |"
    assert table_rows(learner) == [["`00_setup`", "13 s", DASH, "1.1 GB"]]


def test_timings_json_holds_well_formed_runs_as_save_timings_writes_them(tmp_path):
    path = authoring.TIMINGS
    runs = authoring.load_timings(path)
    assert runs, f"{path} has no runs"
    names = {p.stem for p in notebooks()}
    for r in runs:
        assert set(r) == set(RUN_KEYS), r
        for key, kind in RUN_KEYS.items():
            assert isinstance(r[key], kind) and not isinstance(r[key], bool), (key, r)
        assert r["notebook"] in names and r["profile"] in PROFILES, r
        assert r["seconds"] > 0 and r["peak_mb"] > 0 and r["cores"] >= 1, r
        _dt.date.fromisoformat(r["date"])
    authoring.save_timings(list(reversed(runs)), tmp_path / "timings.json")  # sorted, one per key: a no-op
    assert (tmp_path / "timings.json").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


def test_save_timings_keeps_the_newest_run_per_notebook_profile_and_machine(tmp_path):
    old, new, other = run("01_x", "cpu", 60), run("01_x", "cpu", 50, date="2026-03-01"), run("00_setup", "gpu", 5)
    authoring.save_timings([old, other, new, run("01_x", "ci", 9)], tmp_path / "t.json")
    saved = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))["runs"]
    assert [(r["notebook"], r["profile"], r["seconds"]) for r in saved] == \
        [("00_setup", "gpu", 5), ("01_x", "ci", 9), ("01_x", "cpu", 50)]


def generated_blocks() -> list[tuple[str, str]]:
    """Every generated time table committed in the README and the notebooks: ``(where, block)``."""
    found = []
    markers = ((authoring.START, authoring.END), (authoring.TABLE_START, authoring.TABLE_END))
    sources = [("README.md", (REPO_ROOT / "README.md").read_text(encoding="utf-8"))]
    sources += [(p.name, cell.source) for p in notebooks() for cell in nbformat.read(p, as_version=4).cells
                if cell.cell_type == "markdown"]
    for where, text in sources:
        for start, end in markers:
            if start in text:
                assert end in text, f"{where}: {start} without {end}"
                found.append((where, text[text.index(start):text.index(end) + len(end)]))
    return found


def test_every_committed_time_table_is_well_formed():
    blocks = generated_blocks()
    assert any(where == "README.md" for where, _ in blocks) and len(blocks) > len(notebooks())
    for where, block in blocks:
        for row in table_rows(block):
            profile_table = row[0].strip("`") in PROFILES  # a notebook's own table: profile, for, time, memory, where
            times, memory = ([row[2]], row[3]) if profile_table else (row[1:-1], row[-1])
            assert all(t == DASH or TIME.match(t) for t in times), f"{where}: a time in {row}"
            assert memory == DASH or MEMORY.match(memory), f"{where}: the memory in {row}"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_every_notebooks_run_time_line_is_one_generated_line(path):
    title = nbformat.read(path, as_version=4).cells[1].source  # the title cell (tests/test_notebooks.py)
    line = title[title.index(authoring.RUNTIME_START):title.index(authoring.RUNTIME_END)]
    assert "\n" not in line and line.count("*") == 2, line
    on_cpu = r"about (\d+ s|\d+\.\d min) on a CPU in the `cpu` profile|not measured yet on a laptop CPU"
    assert re.search(on_cpu, line), line
