"""The budget marks: the shares of `budget_usd` whose crossing a campaign announces.

Pure and light: the runner (evolution/loop.py) announces them as events, and
the dashboards (`dgm run`'s live view, `dgm status`) show the last one passed.
"""

from __future__ import annotations

BUDGET_MARKS = (50, 80)
"""Percentages of the cap announced once each (an event `budget_mark` and a dashboard line)."""


def marks_passed(spent_usd: float, cap_usd: float | None) -> list[int]:
    """The marks `spent_usd` has reached, lowest first (none without a positive cap)."""
    if not cap_usd or cap_usd <= 0:
        return []
    return [mark for mark in BUDGET_MARKS if spent_usd >= cap_usd * mark / 100]
