"""How long a notebook takes to teach: reading time from its words, plus its code cells and exercises.

A shared tool for instructors: docs/instructor.md's schedules, and the
*(optional)* mark that notebook 00 explains. A notebook's numbered sections (``## 3. ...``) are **core** unless
the heading ends with ``(optional)``; the opening (title, parameters) and the
summary are core too; references and "For instructors and maintainers" are not
taught in the room. Each section's minutes are a plan built from counts:

- its words (markdown, generated tables left out) at :data:`READING_WPM`;
- :data:`CELL_MINUTES` per code cell (reading it and running it);
- :data:`EXERCISE_MINUTES` per exercise (``### Exercise`` cells).

The counts are measured from the notebook; the three rates are assumptions,
stated in the instructor's guide: calibrate them after a pilot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

READING_WPM = 130  # technical prose with maths and code, read on screen while an instructor explains
CELL_MINUTES = 0.5  # reading one code cell and running it
EXERCISE_MINUTES = 10  # one exercise: attempted, checked, discussed
OPTIONAL = "(optional)"
NOT_TAUGHT = ("References", "For instructors and maintainers")
_GENERATED = re.compile(r"<!-- (?:run time|notebook timings|timings)[^>]*-->.*?<!-- /[^>]*-->", re.S)
_WORD = re.compile(r"[A-Za-z0-9']+")


@dataclass(frozen=True)
class Section:
    """One part of a notebook: its heading, whether it is optional, and what it holds."""

    title: str
    optional: bool
    words: int
    code_cells: int
    exercises: int

    @property
    def minutes(self) -> float:
        """Planned minutes: reading, running the cells, the exercises."""
        return self.words / READING_WPM + self.code_cells * CELL_MINUTES + self.exercises * EXERCISE_MINUTES


@dataclass(frozen=True)
class Plan:
    """A notebook's sections, and the planned minutes of its core and of its optional sections."""

    notebook: str
    sections: tuple[Section, ...]

    def _total(self, optional: bool) -> float:
        return sum(s.minutes for s in self.sections if s.optional == optional)

    @property
    def core_minutes(self) -> float:
        return self._total(False)

    @property
    def optional_minutes(self) -> float:
        return self._total(True)

    def count(self, what: str, optional: bool = False) -> int:
        """The total of ``words``, ``code_cells`` or ``exercises`` over the core (or optional) sections."""
        return sum(getattr(s, what) for s in self.sections if s.optional == optional)

    @property
    def optional_titles(self) -> list[str]:
        return [s.title for s in self.sections if s.optional]


def words(markdown: str) -> int:
    """The words of a markdown cell, generated time tables left out."""
    return len(_WORD.findall(_GENERATED.sub("", markdown)))


def plan(path: str | Path) -> Plan:
    """The sections of the notebook at ``path`` with their counts (see the module's docstring)."""
    nb = nbformat.read(str(path), as_version=4)
    counts: dict[str, list[int]] = {"Opening": [0, 0, 0]}
    title = "Opening"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = re.search(r"^## (.+?)\s*$", cell.source, re.M)
            if heading and heading.group(1) != "Parameters":
                title = heading.group(1)
                counts.setdefault(title, [0, 0, 0])
            counts[title][0] += words(cell.source)
            counts[title][2] += cell.source.lstrip().startswith("### Exercise")
        elif cell.cell_type == "code":
            counts[title][1] += 1
    sections = tuple(
        Section(title, title.endswith(OPTIONAL), w, c, e)
        for title, (w, c, e) in counts.items() if not title.startswith(NOT_TAUGHT)
    )
    return Plan(Path(path).stem, sections)
