from datetime import date

import pytest

from datespan import DateSpan


def s(first, end):
    return DateSpan(date(2024, 3, first), date(2024, 3, end))


def test_back_to_back_spans_do_not_overlap():
    assert not s(1, 5).overlaps(s(5, 8))
    assert not s(5, 8).overlaps(s(1, 5))


def test_one_shared_day_is_an_overlap():
    assert s(1, 6).overlaps(s(5, 8))
    assert s(5, 8).overlaps(s(1, 6))


@pytest.mark.parametrize("other", [s(3, 3), s(5, 5), s(1, 1)], ids=["inside", "at-end", "at-start"])
def test_empty_span_overlaps_nothing(other):
    assert not s(1, 5).overlaps(other)
    assert not other.overlaps(s(1, 5))


def test_overlaps_agrees_with_intersection():
    spans = [s(a, b) for a in range(1, 8) for b in range(a, 9)]
    for x in spans:
        for y in spans:
            assert x.overlaps(y) == (x.intersection(y) is not None), (x, y)
