"""SpanSet: a set of days stored as sorted, disjoint, non-adjacent spans."""

from __future__ import annotations

import bisect
import heapq
from datetime import date
from typing import Iterable, Iterator, Union

from datespan.span import DateSpan

_Operand = Union["SpanSet", DateSpan]


def _as_spanset(value: object) -> SpanSet | None:
    if isinstance(value, SpanSet):
        return value
    if isinstance(value, DateSpan):
        return SpanSet([value])
    return None


def _normal_form(spans: Iterable[DateSpan]) -> SpanSet:
    """A SpanSet from spans sorted by start, merged in one pass."""
    merged: list[DateSpan] = []
    for span in spans:
        if not span:
            continue
        if merged and span.start <= merged[-1].end:
            if span.end > merged[-1].end:
                merged[-1] = DateSpan(merged[-1].start, span.end)
        else:
            merged.append(span)
    result = SpanSet()
    result._spans = merged
    return result


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
        if i < len(spans) and spans[i].start <= end:
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
        return SpanSet([within]) - self

    def isdisjoint(self, other: _Operand) -> bool:
        """Whether no day is in both."""
        return not (self & other)

    # -- set algebra ---------------------------------------------------------------
    # Each operator returns a new SpanSet and accepts a DateSpan on either side;
    # other operand types get NotImplemented, so Python raises TypeError.

    def __or__(self, other: _Operand) -> SpanSet:
        other_set = _as_spanset(other)
        if other_set is None:
            return NotImplemented
        return _normal_form(heapq.merge(self._spans, other_set._spans))

    def __and__(self, other: _Operand) -> SpanSet:
        other_set = _as_spanset(other)
        if other_set is None:
            return NotImplemented
        # Both lists are sorted and disjoint: walk them together, always
        # advancing the span that ends first, since it cannot meet later ones.
        mine, theirs = self._spans, other_set._spans
        result = SpanSet()
        i = j = 0
        while i < len(mine) and j < len(theirs):
            common = mine[i].intersection(theirs[j])
            if common is not None:
                # Pieces arrive sorted and separated by at least one day that
                # one side lacks, so they can be appended without merging.
                result._spans.append(common)
            if mine[i].end <= theirs[j].end:
                i += 1
            else:
                j += 1
        return result

    def __sub__(self, other: _Operand) -> SpanSet:
        other_set = _as_spanset(other)
        if other_set is None:
            return NotImplemented
        result = self.copy()
        for span in other_set._spans:
            result.remove(span)
        return result

    def __xor__(self, other: _Operand) -> SpanSet:
        other_set = _as_spanset(other)
        if other_set is None:
            return NotImplemented
        return (self - other_set) | (other_set - self)

    __ror__ = __or__
    __rand__ = __and__
    __rxor__ = __xor__

    def __rsub__(self, other: DateSpan) -> SpanSet:
        other_set = _as_spanset(other)
        if other_set is None:
            return NotImplemented
        return other_set - self
