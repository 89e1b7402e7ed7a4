"""course_utils.exercises: every checker says right to a right answer and gives the specific hint to each wrong one."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import exercises
from course_utils.exercises import CheckResult, Wrong, checker
from tests.checks import assert_right, assert_wrong

# --- the pattern --------------------------------------------------------------------------


def test_result_is_truthy_only_when_right_and_shows_one_line():
    right, wrong = CheckResult(True, "x", "fine"), CheckResult(False, "x", "no")
    assert right and not wrong
    assert repr(right) == "✅ right (x): fine" and str(wrong) == "❌ wrong (x): no"


def test_checker_turns_wrong_and_crashes_into_hints(monkeypatch):
    @checker
    def check_demo(value):
        if value == "crash":
            raise KeyError("boom")
        if value != 1:
            raise Wrong("expected 1")
        return "one"

    assert_right(check_demo(1))
    assert_wrong(check_demo(2), "expected 1")
    assert_wrong(check_demo("crash"), "KeyError")
    assert exercises.CHECKERS["check_demo"] is check_demo
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")
    with pytest.raises(AssertionError, match="expected 1"):
        check_demo(2)
    assert_right(check_demo(1))
    del exercises.CHECKERS["check_demo"]


def test_every_checker_is_registered_and_documented():
    import course_utils.exercises.basics  # noqa: F401  (registers the checkers of 01)

    names = {"check_trigram_nll", "check_penalised_loss", "check_pca_interpolation", "check_stratified_split"}
    assert names <= set(exercises.CHECKERS)
    assert all(exercises.CHECKERS[n].__doc__ for n in names)


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


def test_an_unfinished_stub_gets_the_plain_not_done_hint():
    def stub(x):
        raise NotImplementedError

    @checker
    def check_double(fn):
        value = exercises.as_number(exercises.call(fn, "your function", 2), "the result")
        if value != 4:
            raise Wrong("double it")
        return "doubled"

    try:
        for unfinished in (stub, ..., lambda x: ...):
            result = check_double(unfinished)
            assert_wrong(result, "not done yet")
            assert "Traceback" not in str(result) and "NotImplementedError:" not in str(result)
        assert_wrong(exercises.CHECKERS["check_double"](lambda x: 1 / 0), "raised ZeroDivisionError")
        assert_right(check_double(lambda x: 2 * x))
    finally:
        del exercises.CHECKERS["check_double"]
    assert_wrong(_check_value(...), "not done yet")


@checker
def _check_value(value):
    exercises.as_tensor(value, "your tensor")
    return "fine"
