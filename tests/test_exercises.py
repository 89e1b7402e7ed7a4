"""course_utils.exercises: every checker says right to a right answer and gives the specific hint to each wrong one."""

from __future__ import annotations

import importlib
import inspect
import math

import pytest
import torch

from course_utils import exercises
from course_utils.exercises import CheckResult, Wrong, checker
from tests.checks import assert_not_done, assert_right, assert_wrong

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest (conftest.py)

# --- the pattern --------------------------------------------------------------------------

EXERCISE_MODULES = ("setup", "basics", "gan", "vae", "diffusion", "gpt", "hf", "evaluation")


def _import_all() -> None:
    for name in EXERCISE_MODULES:
        importlib.import_module(f"course_utils.exercises.{name}")


def test_result_is_truthy_only_when_right_and_shows_one_line():
    right, wrong = CheckResult("right", "x", "fine"), CheckResult("wrong", "x", "no")
    undone = CheckResult("not done", "x")
    assert right and not wrong and not undone
    assert repr(right) == "✅ right (x): fine" and str(wrong) == "❌ wrong (x): no"
    assert str(undone) == "⬜ not done yet (x)"


def test_checker_turns_wrong_and_crashes_into_hints(monkeypatch):
    @checker
    def check_demo(value):
        if value == "crash":
            raise KeyError("boom")
        if value is ...:
            raise exercises.NotDone
        if value != 1:
            raise Wrong("expected 1")
        return "one"

    try:
        assert_right(check_demo(1))
        assert_wrong(check_demo(2), "expected 1")
        assert_wrong(check_demo("crash"), "KeyError")
        assert_not_done(check_demo(...))
        assert exercises.CHECKERS["check_demo"] is check_demo
        monkeypatch.setenv("COURSE_EXPECT_STUBS", "1")  # the tests' notebook runs: only a stub may reach a checker
        assert_not_done(check_demo(...))
        for answered in (1, 2, "crash"):
            with pytest.raises(AssertionError, match="must be left as its stub"):
                check_demo(answered)
    finally:
        del exercises.CHECKERS["check_demo"]


def test_every_checker_has_a_reference_solution_that_it_calls_right():
    """Each reference solution in course_utils.solutions passes its checker; solutions never run in a notebook."""
    _import_all()
    assert len(exercises.CHECKERS) >= 3 * (len(EXERCISE_MODULES) - 1) + 1
    missing = sorted(set(exercises.CHECKERS) - set(exercises.SOLUTIONS))
    assert not missing, f"checkers without a reference solution: {missing}"
    for name, check in exercises.CHECKERS.items():
        ref = exercises.reference(name)
        assert ref.__module__ == f"course_utils.solutions.{check.__module__.rsplit('.', 1)[-1]}"
        assert_right(check(ref))


def _stub(*args, **kwargs):
    raise NotImplementedError


def test_every_checker_answers_an_unfinished_stub_with_not_done_yet_and_nothing_else():
    _import_all()
    for name, check in exercises.CHECKERS.items():
        for unfinished in (_stub, ..., lambda *a, **k: ...):
            result = check(unfinished)
            assert result.status == "not done", f"{name} on a stub: {result}"
            assert_not_done(result)


def test_a_shown_solution_runs_as_it_is_when_pasted():
    """show_solution prints the imports of the solution's file too: pasted into a cell, it defines the function."""
    _import_all()
    for name in exercises.SOLUTIONS:
        source, _ = exercises.solution_source(name)
        namespace: dict = {}
        exec(compile(source, "<pasted>", "exec"), namespace)  # noqa: S102  (the course's own reference text)
        assert callable(namespace[exercises.SOLUTIONS[name]])
        assert_right(exercises.CHECKERS[name](namespace[exercises.SOLUTIONS[name]]))


def test_every_solution_function_belongs_to_an_exercise():
    _import_all()
    wanted = {(exercises._solutions_module(c), s) for c, s in exercises.SOLUTIONS.items()}
    for topic in EXERCISE_MODULES:
        module = importlib.import_module(f"course_utils.solutions.{topic}")
        public = {n for n, f in vars(module).items()
                  if inspect.isfunction(f) and f.__module__ == module.__name__ and not n.startswith("_")}
        assert public == {s for m, s in wanted if m == module.__name__}, topic


def test_show_solution_prints_the_source_without_running_it(capsys):
    _import_all()
    name, solution = next(iter(exercises.SOLUTIONS.items()))
    source, path = exercises.solution_source(solution)
    assert f"\ndef {solution}(" in "\n" + source and path.parent.name == "solutions"
    for what in (solution, name, exercises.CHECKERS[name]):
        exercises.show_solution(what)
        shown = capsys.readouterr().out
        assert f"def {solution}(" in shown and f"course_utils/solutions/{path.name}" in shown
    with pytest.raises(ValueError, match="no exercise asks for 'nonsense'"):
        exercises.show_solution("nonsense")


def test_helpers_give_hints():
    with pytest.raises(Wrong, match="should be a torch.Tensor, but it is a list"):
        exercises.as_tensor([1.0], "x")
    with pytest.raises(Wrong, match=r"shape \(2, 2\), but it has shape \(3,\)"):
        exercises.as_tensor(torch.ones(3), "x", shape=(2, 2))
    with pytest.raises(Wrong, match="dtype torch.int64"):
        exercises.as_tensor(torch.ones(3, dtype=torch.long), "x")
    with pytest.raises(Wrong, match="inf or nan"):
        exercises.as_tensor(torch.tensor([1.0, math.nan]), "x")
    assert exercises.as_number(torch.tensor(2.5), "v") == 2.5
    with pytest.raises(Wrong, match="one number"):
        exercises.as_number(torch.ones(2), "v")
    with pytest.raises(Wrong, match="should be a number, but it is a str"):
        exercises.as_number("2.5", "v")


def test_an_unfinished_stub_is_not_done_yet_never_a_traceback():
    def stub(x):
        raise NotImplementedError

    @checker
    def check_double(fn):
        value = exercises.as_number(exercises.call(fn, "your function", 2), "the result")
        if value != 4:
            raise Wrong("double it")
        return "doubled"

    @checker
    def check_value(value):
        exercises.as_tensor(value, "your tensor")
        return "fine"

    try:
        for unfinished in (stub, ..., lambda x: ...):
            result = check_double(unfinished)
            assert_not_done(result)
            assert "Traceback" not in str(result) and "NotImplementedError" not in str(result)
        assert_wrong(exercises.CHECKERS["check_double"](lambda x: 1 / 0), "raised ZeroDivisionError")
        assert_right(check_double(lambda x: 2 * x))
        assert_not_done(check_value(...))
    finally:
        del exercises.CHECKERS["check_double"], exercises.CHECKERS["check_value"]


def test_refusing_records_the_shortcut_raises_and_always_restores():
    import types

    owner = types.SimpleNamespace(shortcut=lambda: "answer")
    original = owner.shortcut
    with pytest.raises(KeyError), exercises.refusing([(owner, "shortcut", "owner.shortcut")]) as used:
        with pytest.raises(exercises.Refused, match="owner.shortcut is not allowed"):
            owner.shortcut()
        assert used == ["owner.shortcut"]
        raise KeyError("the learner's code fails")
    assert owner.shortcut is original and owner.shortcut() == "answer"
