"""Assertions shared by the checker tests (one per notebook)."""

from __future__ import annotations

from course_utils.exercises import CheckResult


def assert_wrong(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult)
    assert not result, f"expected wrong, got: {result}"
    assert str(result).startswith("❌ wrong")
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in hint: {result.message}"


def assert_right(result: CheckResult) -> None:
    assert isinstance(result, CheckResult)
    assert result, f"expected right, got: {result}"
    assert str(result).startswith("✅ right")


def assert_not_done(result: CheckResult) -> None:
    """An unfinished stub: "not done yet" and nothing else."""
    assert isinstance(result, CheckResult)
    assert not result and result.status == "not done", f"expected not done, got: {result}"
    assert str(result).startswith("⬜ not done yet") and result.message == ""
