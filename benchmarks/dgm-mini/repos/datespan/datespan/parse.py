"""Parse dates and periods written the way people write them in reports."""

from __future__ import annotations

import re
from datetime import date, timedelta

from datespan.span import DateSpan

_YEAR = re.compile(r"(\d{4})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")


def parse_date(text: str) -> date:
    """A date written as YYYY-MM-DD."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date (expected YYYY-MM-DD): {text!r}") from None


def _month(year: int, month: int) -> DateSpan:
    if not 1 <= month <= 12:
        raise ValueError(f"no month {month:02d}")
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return DateSpan(start, end)


def _iso_week(year: int, week: int) -> DateSpan:
    if not 1 <= week <= 53:
        raise ValueError(f"no ISO week {week:02d}")
    jan1 = date(year, 1, 1)
    # Weeks run Monday to Sunday; week 1 holds the first days of the year.
    start = jan1 - timedelta(days=jan1.weekday()) + timedelta(weeks=week - 1)
    return DateSpan(start, start + timedelta(days=7))


def parse_period(text: str) -> DateSpan:
    """The span a period expression denotes.

    - ``2024``: the year
    - ``2024-03``: the month
    - ``2024-03-05``: the day
    - ``2024-W09``: the ISO 8601 week (Monday to Sunday)
    - ``2024-03-01/2024-03-10``: both days included, as people write ranges
    """
    text = text.strip()
    if "/" in text:
        first, _, last = text.partition("/")
        first_day, last_day = parse_date(first), parse_date(last)
        if last_day < first_day:
            raise ValueError(f"period ends before it starts: {text!r}")
        return DateSpan.inclusive(first_day, last_day)
    if match := _YEAR.fullmatch(text):
        year = int(match[1])
        return DateSpan(date(year, 1, 1), date(year + 1, 1, 1))
    if match := _MONTH.fullmatch(text):
        return _month(int(match[1]), int(match[2]))
    if match := _WEEK.fullmatch(text):
        return _iso_week(int(match[1]), int(match[2]))
    try:
        return DateSpan.day(parse_date(text))
    except ValueError:
        raise ValueError(f"not a period: {text!r}") from None
