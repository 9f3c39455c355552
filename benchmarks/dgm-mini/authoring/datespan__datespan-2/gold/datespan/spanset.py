"""SpanSet: a set of days stored as sorted, disjoint, non-adjacent spans."""

from __future__ import annotations

import bisect
from datetime import date
from typing import Iterable, Iterator

from datespan.span import DateSpan


class SpanSet:
    """A set of days, e.g. the booked days of a room.

    It is stored as the fewest spans that cover exactly those days, sorted by
    start, so two SpanSets holding the same days are equal.
    """

    def __init__(self, spans: Iterable[DateSpan] = ()) -> None:
        self._spans: list[DateSpan] = []
        for span in spans:
            self.add(span)

    @property
    def spans(self) -> tuple[DateSpan, ...]:
        return tuple(self._spans)

    def __iter__(self) -> Iterator[DateSpan]:
        return iter(self._spans)

    def __len__(self) -> int:
        """Number of spans (see `total_days` for the number of days)."""
        return len(self._spans)

    def __bool__(self) -> bool:
        return bool(self._spans)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpanSet):
            return NotImplemented
        return self._spans == other._spans

    def __repr__(self) -> str:
        return f"SpanSet([{', '.join(str(s) for s in self._spans)}])"

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        i = bisect.bisect_right([s.start for s in self._spans], day)
        return i > 0 and day in self._spans[i - 1]

    def copy(self) -> SpanSet:
        result = SpanSet()
        result._spans = list(self._spans)
        return result

    def total_days(self) -> int:
        return sum(len(s) for s in self._spans)

    def add(self, span: DateSpan) -> None:
        """Add the days of `span`, merging with spans it overlaps or touches."""
        if not span:
            return
        spans = self._spans
        i = bisect.bisect_left([s.start for s in spans], span.start)
        start, end = span.start, span.end
        # ">=" and "<=": touching spans merge too, keeping the representation unique.
        if i > 0 and spans[i - 1].end >= start:
            i -= 1
            start = spans[i].start
            end = max(end, spans[i].end)
            del spans[i]
        # A long span can swallow or bridge several of the following ones.
        while i < len(spans) and spans[i].start <= end:
            end = max(end, spans[i].end)
            del spans[i]
        spans.insert(i, DateSpan(start, end))

    def remove(self, span: DateSpan) -> None:
        """Remove the days of `span` (days not in the set are ignored)."""
        kept: list[DateSpan] = []
        for s in self._spans:
            if s.end <= span.start or span.end <= s.start:
                kept.append(s)
                continue
            if s.start < span.start:
                kept.append(DateSpan(s.start, span.start))
            if span.end < s.end:
                kept.append(DateSpan(span.end, s.end))
        self._spans = kept

    def gaps(self, within: DateSpan) -> SpanSet:
        """The days of `within` that are not in the set."""
        result = SpanSet([within])
        for span in self._spans:
            result.remove(span)
        return result
