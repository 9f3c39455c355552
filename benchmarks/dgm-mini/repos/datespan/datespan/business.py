"""Business days: everything but weekends and holidays."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable

from datespan.span import ONE_DAY, DateSpan

SATURDAY_SUNDAY = (5, 6)


class BusinessCalendar:
    """Which days are working days.

    `weekend` holds weekday numbers as in `date.weekday()` (Monday is 0);
    some countries rest on Friday and Saturday.
    """

    def __init__(self, holidays: Iterable[date] = (), weekend: Iterable[int] = SATURDAY_SUNDAY) -> None:
        self.holidays = list(holidays)
        self.weekend = frozenset(weekend)
        if not self.weekend <= set(range(7)):
            raise ValueError(f"weekend days must be 0 (Monday) .. 6 (Sunday), not {sorted(self.weekend)}")
        if len(self.weekend) == 7:
            raise ValueError("a week needs at least one working day")

    def is_business_day(self, day: date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays

    def business_days(self, span: DateSpan) -> int:
        """How many business days `span` holds.

        Counted per week rather than per day, so multi-year spans stay cheap.
        """
        full_weeks, rest = divmod(len(span), 7)
        count = full_weeks * (7 - len(self.weekend))
        tail = span.start + timedelta(weeks=full_weeks)
        count += sum(1 for i in range(rest) if (tail + timedelta(days=i)).weekday() not in self.weekend)
        count -= sum(1 for holiday in self.holidays if holiday in span)
        return count

    def add_business_days(self, day: date, n: int) -> date:
        """The `n`-th business day after `day` (before it, for negative `n`).

        `day` itself need not be a business day; ``n == 0`` returns it unchanged.
        """
        step = ONE_DAY if n >= 0 else -ONE_DAY
        remaining = abs(n)
        while remaining:
            day += step
            if self.is_business_day(day):
                remaining -= 1
        return day
