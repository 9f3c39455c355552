"""DateSpan: a half-open range of whole days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterator

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, order=True)
class DateSpan:
    """The days from `start` up to, but not including, `end`.

    Half-open spans compose without off-by-one juggling: a stay from the 1st to
    the 5th and one from the 5th to the 8th share no night, and splitting a span
    at any day gives two spans whose lengths add up.
    """

    start: date
    end: date

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            # datetime is a subclass of date, but its time part would be
            # silently ignored by every comparison here.
            if not isinstance(value, date) or isinstance(value, datetime):
                raise TypeError(f"DateSpan needs datetime.date values, not {type(value).__name__}")
        if self.end < self.start:
            raise ValueError(f"span ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def inclusive(cls, first: date, last: date) -> DateSpan:
        """The span from `first` to `last`, both included."""
        return cls(first, last + ONE_DAY)

    @classmethod
    def day(cls, day: date) -> DateSpan:
        """The span holding just `day`."""
        return cls(day, day + ONE_DAY)

    @property
    def last(self) -> date:
        """The last day in the span."""
        if not self:
            raise ValueError("an empty span has no last day")
        return self.end - ONE_DAY

    def __len__(self) -> int:
        return (self.end - self.start).days

    def __contains__(self, day: object) -> bool:
        if isinstance(day, datetime) or not isinstance(day, date):
            return False
        return self.start <= day < self.end

    def __iter__(self) -> Iterator[date]:
        day = self.start
        while day < self.end:
            yield day
            day += ONE_DAY

    def __str__(self) -> str:
        if not self:
            return f"{self.start.isoformat()} (empty)"
        return f"{self.start.isoformat()}..{self.last.isoformat()}"

    def overlaps(self, other: DateSpan) -> bool:
        """Whether the two spans share at least one day."""
        return self.start <= other.end and other.start <= self.end

    def intersection(self, other: DateSpan) -> DateSpan | None:
        """The days in both spans, or None if there are none."""
        start, end = max(self.start, other.start), min(self.end, other.end)
        return DateSpan(start, end) if start < end else None

    def shift(self, days: int) -> DateSpan:
        """The span moved by `days` (negative: earlier)."""
        delta = timedelta(days=days)
        return DateSpan(self.start + delta, self.end + delta)
