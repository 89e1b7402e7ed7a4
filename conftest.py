"""nbval runs (make test, make test-gpu): the longest notebooks first, and the seconds per notebook at the end.

``make test`` runs the notebooks on two workers (pytest-xdist, a notebook per worker); starting with the longest
keeps both busy to the end. "Longest" is the notebook's last measured ``ci`` time in ``docs/timings.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

# read here with json, not through course_utils.authoring: that module imports torch, which would add about 2 s to
# every notebook's measured time (the kernel imports its own torch)
TIMINGS = Path(__file__).parent / "docs" / "timings.json"

_seconds: dict[str, float] = defaultdict(float)


def _measured_seconds() -> dict[str, float]:
    runs = json.loads(TIMINGS.read_text(encoding="utf-8"))["runs"] if TIMINGS.exists() else []
    return {run["notebook"]: run["seconds"] for run in runs if run["profile"] == "ci"}


def pytest_collection_modifyitems(items) -> None:
    """Notebooks longest first (a stable sort: every notebook's cells keep their order); other tests untouched."""
    if not any(str(item.fspath).endswith(".ipynb") for item in items):
        return
    seconds = _measured_seconds()
    items.sort(key=lambda item: -seconds.get(Path(str(item.fspath)).stem, float("inf")))


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not _seconds:
        return
    terminalreporter.section("seconds per notebook")
    for path, seconds in sorted(_seconds.items()):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_seconds.values()):8.1f} s  in all")
