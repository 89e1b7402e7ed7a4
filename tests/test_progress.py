"""course_utils.progress: quiet in CI; time budgets."""

from __future__ import annotations

import pytest

from course_utils.progress import TimeBudget, progress, quiet


@pytest.mark.parametrize(
    "quiet_var,ci,expected",
    [("1", None, True), ("0", "true", False), (None, "true", True), (None, None, False), ("yes", None, True)],
)
def test_quiet_follows_course_quiet_then_ci(monkeypatch, quiet_var, ci, expected):
    for name, value in (("COURSE_QUIET", quiet_var), ("CI", ci)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert quiet() is expected
    bar = progress(range(3))
    assert bar.disable is expected
    assert list(bar) == [0, 1, 2]


def test_time_budget():
    now = [100.0]
    clock = lambda: now[0]  # noqa: E731  (a clock the test moves: nothing here depends on the machine's speed)
    assert not TimeBudget(None, clock=clock).spent()
    assert TimeBudget(0, clock=clock).spent()
    budget = TimeBudget(0.5 / 60, clock=clock)  # half a second
    assert not budget.spent() and budget.elapsed() == 0.0
    now[0] += 0.25
    assert not budget.spent() and budget.elapsed() == 0.25
    now[0] += 0.25
    assert budget.spent() and budget.elapsed() == 0.5
    with pytest.raises(ValueError, match="non-negative"):
        TimeBudget(-1)
