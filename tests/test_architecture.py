"""The package's shape, read from its source (AST): no hidden import, shared modules free of topics, a short model.

- no function imports from ``course_utils`` (an import hidden in a function is how a cycle is dodged), and none
  imports a module by name at run time, except the two explicit registries that exist to do so;
- a shared module (device, data, files, checkpoints, configs, training, plotting...) imports shared modules
  only: a topic (gpt, vae, hf, music...) may import them, never the other way round;
- the top-level imports between ``course_utils`` modules form no cycle;
- ``gpt.py``, the model a learner reads in one sitting, is at most 400 lines (nanoGPT's ``model.py`` is 330);
- every module's docstring names the notebook that teaches it, or says that the module is shared.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from course_utils import REPO_ROOT

PACKAGE = REPO_ROOT / "course_utils"
#: Modules every topic may use; they import nothing but each other.
SHARED = frozenset({
    "course_utils", "runtime", "progress", "files", "training", "configs", "checkpoints", "plotting", "data",
    "datasets", "bundle", "cli", "colab", "authoring", "lesson_plan", "workshop", "exercises",
})
#: Modules that import topics on purpose: the command line's registry of what it trains, and the notebooks' widgets.
REGISTRIES = frozenset({"train", "widgets"})
#: The functions that import a module named at run time, each an explicit registry: a data set's preparation
#: (``music:prepare_chorales``), the class a checkpoint card names, an exercise's reference solution.
DYNAMIC_IMPORTS = frozenset({("data", "prepare"), ("checkpoints", "build_model"), ("exercises", "reference")})
GPT_MAX_LINES = 400
NOTEBOOK = re.compile(r"\bnotebooks? \d{1,2}\b|\b\d\d_[a-z]|\bshared\b", re.IGNORECASE)


def module_name(path: Path) -> str:
    """``gpt`` for ``course_utils/gpt.py``, ``exercises`` for its ``__init__.py``, ``exercises.gpt`` for the rest."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "course_utils"


MODULES = sorted(PACKAGE.rglob("*.py"))


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The ``course_utils`` modules an import statement names, without the prefix (a relative import: ``.``)."""
    if isinstance(node, ast.ImportFrom) and node.level:
        return ["."]  # the package uses absolute imports only; a relative one is reported as it is
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.module == "course_utils":  # from course_utils import data, gpt (REPO_ROOT is not a module)
        return [alias.name for alias in node.names if alias.name[0].islower()]
    else:
        names = [node.module or ""]
    return [name.removeprefix("course_utils.") for name in names if name.startswith("course_utils.")]


def function_imports(path: Path) -> list[str]:
    """``line: what`` for every import of ``course_utils`` inside a function, and every run-time import by name."""
    found = []
    for function in ast.walk(tree(path)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        dynamic_allowed = (module_name(path), function.name) in DYNAMIC_IMPORTS
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and imported(node):
                found.append(f"{path.name}:{node.lineno} {function.name}() imports {', '.join(imported(node))}")
            elif isinstance(node, ast.Call) and not dynamic_allowed and _is_dynamic_import(node.func):
                found.append(f"{path.name}:{node.lineno} {function.name}() imports a module by name at run time")
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def top_level_imports(path: Path) -> set[str]:
    """The ``course_utils`` modules a module imports outside any function (first component: its top module)."""
    found: set[str] = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {name.split(".")[0] for name in imported(node)}
    found.discard(module_name(path).split(".")[0])
    return found


def top_module(path: Path) -> str:
    return module_name(path).split(".")[0]


def test_the_architecture_test_reads_the_whole_package():
    names = {module_name(p) for p in MODULES}
    assert {"gpt", "data", "runtime", "exercises", "exercises.gpt", "solutions.gpt"} <= names
    assert SHARED - {"course_utils"} <= names, f"listed as shared but missing: {sorted(SHARED - names)}"
    example = ast.parse("from course_utils import REPO_ROOT, data\nimport course_utils.gpt\nimport torch\n"
                        "def f():\n    from course_utils.gpt import GPT\n    from . import vae\n")
    assert [imported(n) for n in ast.walk(example) if isinstance(n, (ast.Import, ast.ImportFrom))] == [
        ["data"], ["gpt"], [], ["gpt"], ["."]]


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_function_imports_from_course_utils(path):
    assert function_imports(path) == [], "an import inside a function hides a cycle: import at the top instead"


@pytest.mark.parametrize("path", [p for p in MODULES if top_module(p) in SHARED and top_module(p) != "exercises"
                                  or module_name(p) in ("course_utils", "exercises")], ids=module_name)
def test_shared_modules_import_no_topic(path):
    topics = sorted(top_level_imports(path) - SHARED)
    assert topics == [], f"{module_name(path)} is shared but imports the topic(s) {topics}"


def test_no_import_cycle_between_modules():
    graph = {module_name(p): top_level_imports(p) for p in MODULES if p.parent == PACKAGE and p.name != "__init__.py"}
    finished: set[str] = set()
    cycles: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            cycles.append(" -> ".join(trail[trail.index(name):] + (name,)))
        elif name in graph and name not in finished:
            for other in sorted(graph[name]):
                visit(other, trail + (name,))
            finished.add(name)

    for name in sorted(graph):
        visit(name, ())
    assert cycles == []


def test_the_gpt_model_file_is_short():
    lines = len((PACKAGE / "gpt.py").read_text(encoding="utf-8").splitlines())
    assert lines <= GPT_MAX_LINES, f"course_utils/gpt.py has {lines} lines; the model file holds the model only"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_every_module_names_its_notebook_or_says_it_is_shared(path):
    doc = ast.get_docstring(tree(path)) or ""
    assert NOTEBOOK.search(doc), f"{module_name(path)}: the docstring names no notebook (e.g. 'notebook 05') " \
                                 "and does not say the module is shared"
