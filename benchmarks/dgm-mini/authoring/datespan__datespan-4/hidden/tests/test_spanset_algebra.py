import operator
import random
from datetime import date, timedelta

import pytest

from datespan import DateSpan, SpanSet

BASE = date(2024, 3, 1)


def s(first, end):
    return DateSpan(date(2024, 3, first), date(2024, 3, end))


def S(*spans):
    return SpanSet(spans)


def days(spanset):
    return {day for span in spanset for day in span}


def test_union():
    assert S(s(1, 3)) | S(s(3, 5), s(10, 12)) == S(s(1, 5), s(10, 12))


def test_intersection():
    left = S(s(1, 10), s(15, 20))
    right = S(s(5, 16), s(18, 25))
    assert (left & right).spans == (s(5, 10), s(15, 16), s(18, 20))


def test_intersection_of_touching_sets_is_empty():
    assert not (S(s(1, 5)) & S(s(5, 9)))
    assert S(s(1, 5)).isdisjoint(S(s(5, 9)))
    assert not S(s(1, 6)).isdisjoint(s(5, 9))


def test_difference():
    assert (S(s(1, 10)) - S(s(3, 4), s(6, 8))).spans == (s(1, 3), s(4, 6), s(8, 10))


def test_symmetric_difference():
    assert (S(s(1, 5)) ^ S(s(3, 8))).spans == (s(1, 3), s(5, 8))


def test_datespan_operands_on_either_side():
    booked = S(s(4, 9), s(18, 23))
    assert booked | s(9, 10) == S(s(4, 10), s(18, 23))
    assert s(1, 4) | booked == S(s(1, 9), s(18, 23))
    assert booked - s(5, 20) == S(s(4, 5), s(20, 23))
    assert s(1, 25) - booked == S(s(1, 4), s(9, 18), s(23, 25))
    assert s(8, 19) & booked == S(s(8, 9), s(18, 19))
    assert booked ^ s(8, 10) == S(s(4, 8), s(9, 10), s(18, 23))


def test_operands_are_not_modified():
    a, b = S(s(1, 10)), S(s(5, 15))
    for op in (operator.or_, operator.and_, operator.sub, operator.xor):
        op(a, b)
    assert a.spans == (s(1, 10),)
    assert b.spans == (s(5, 15),)


def test_empty_operands():
    a = S(s(1, 10))
    assert a & SpanSet() == SpanSet()
    assert a - a == SpanSet()
    assert a | SpanSet() == a
    assert SpanSet() ^ a == a


@pytest.mark.parametrize("other", [3, "2024-03-01", [s(1, 2)], {date(2024, 3, 1)}], ids=["int", "str", "list", "set"])
def test_other_types_are_rejected(other):
    a = S(s(1, 10))
    for op in (operator.or_, operator.and_, operator.sub, operator.xor):
        with pytest.raises(TypeError):
            op(a, other)
        with pytest.raises(TypeError):
            op(other, a)


def _random_set(rng):
    # Spans are shorter than the gaps between them, so no span of one set
    # covers a whole gap and the next span of the other.
    spans = []
    start = BASE + timedelta(days=rng.randrange(0, 10))
    for _ in range(rng.randrange(0, 12)):
        end = start + timedelta(days=rng.randrange(1, 6))
        spans.append(DateSpan(start, end))
        start = end + timedelta(days=rng.randrange(6, 11))
    return SpanSet(spans)


@pytest.mark.parametrize("seed", range(8))
def test_operators_agree_with_sets_of_days(seed):
    rng = random.Random(seed)
    for _ in range(25):
        a, b = _random_set(rng), _random_set(rng)
        for op in (operator.or_, operator.and_, operator.sub, operator.xor):
            result = op(a, b)
            assert days(result) == op(days(a), days(b))
            spans = result.spans
            assert all(x.end < y.start for x, y in zip(spans, spans[1:]))
        assert a.isdisjoint(b) == days(a).isdisjoint(days(b))


def test_large_intersection():
    evens = SpanSet(DateSpan(BASE + timedelta(days=4 * i), BASE + timedelta(days=4 * i + 2)) for i in range(3000))
    odds = SpanSet(DateSpan(BASE + timedelta(days=4 * i + 1), BASE + timedelta(days=4 * i + 3)) for i in range(3000))
    common = evens & odds
    assert len(common) == 3000
    assert common.total_days() == 3000
