import random
from datetime import date

import pytest

from datespan import DateSpan, SpanSet


def s(first, end):
    return DateSpan(date(2024, 3, first), date(2024, 3, end))


def test_span_bridging_three_spans():
    booked = SpanSet([s(1, 5), s(10, 15), s(20, 25)])
    booked.add(s(3, 22))
    assert booked.spans == (s(1, 25),)
    assert booked.total_days() == 24


def test_span_swallowing_several_spans():
    booked = SpanSet([s(5, 6), s(8, 9), s(11, 12), s(20, 21)])
    booked.add(s(4, 15))
    assert booked.spans == (s(4, 15), s(20, 21))


def test_span_touching_the_next_after_swallowing():
    booked = SpanSet([s(2, 3), s(4, 5), s(9, 12)])
    booked.add(s(1, 9))
    assert booked.spans == (s(1, 12),)


@pytest.mark.parametrize("seed", range(10))
def test_same_days_give_equal_sets_in_any_order(seed):
    rng = random.Random(seed)
    spans = []
    for _ in range(12):
        first = rng.randrange(1, 29)
        spans.append(s(first, min(31, first + rng.randrange(0, 8))))
    forward = SpanSet(spans)
    backward = SpanSet(reversed(spans))
    assert forward == backward
    days = {day for span in spans for day in span}
    assert forward.total_days() == len(days)
    stored = forward.spans
    assert all(a.end < b.start for a, b in zip(stored, stored[1:]))
    assert all(day in forward for day in days)
