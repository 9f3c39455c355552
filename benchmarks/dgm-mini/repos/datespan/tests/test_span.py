from datetime import date, datetime

import pytest

from datespan import DateSpan


def d(day, month=3, year=2024):
    return date(year, month, day)


def test_half_open_length_and_membership():
    span = DateSpan(d(1), d(5))
    assert len(span) == 4
    assert d(1) in span and d(4) in span
    assert d(5) not in span
    assert list(span) == [d(1), d(2), d(3), d(4)]


def test_inclusive_and_single_day():
    assert DateSpan.inclusive(d(1), d(5)) == DateSpan(d(1), d(6))
    assert DateSpan.day(d(7)) == DateSpan(d(7), d(8))
    assert DateSpan.inclusive(d(1), d(5)).last == d(5)


def test_empty_span():
    empty = DateSpan(d(3), d(3))
    assert len(empty) == 0 and not empty
    assert str(empty) == "2024-03-03 (empty)"
    with pytest.raises(ValueError):
        empty.last


def test_str_shows_inclusive_range():
    assert str(DateSpan(d(1), d(5))) == "2024-03-01..2024-03-04"


def test_validation():
    with pytest.raises(ValueError, match="before it starts"):
        DateSpan(d(5), d(1))
    with pytest.raises(TypeError):
        DateSpan(datetime(2024, 3, 1, 12), d(5))


def test_datetimes_are_not_members():
    assert datetime(2024, 3, 2, 12) not in DateSpan(d(1), d(5))


def test_overlapping_spans():
    assert DateSpan(d(1), d(10)).overlaps(DateSpan(d(5), d(15)))
    assert DateSpan(d(5), d(15)).overlaps(DateSpan(d(1), d(10)))
    assert DateSpan(d(1), d(10)).overlaps(DateSpan(d(3), d(4)))


def test_distant_spans_do_not_overlap():
    assert not DateSpan(d(1), d(5)).overlaps(DateSpan(d(10), d(15)))


def test_intersection():
    assert DateSpan(d(1), d(10)).intersection(DateSpan(d(5), d(15))) == DateSpan(d(5), d(10))
    assert DateSpan(d(1), d(5)).intersection(DateSpan(d(5), d(15))) is None


def test_shift_and_ordering():
    assert DateSpan(d(1), d(5)).shift(3) == DateSpan(d(4), d(8))
    assert DateSpan(d(1), d(5)).shift(-1) == DateSpan(date(2024, 2, 29), d(4))
    assert sorted([DateSpan(d(4), d(5)), DateSpan(d(1), d(9))])[0].start == d(1)
