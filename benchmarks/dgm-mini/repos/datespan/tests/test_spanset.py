from datetime import date

from datespan import DateSpan, SpanSet


def s(first, end):
    return DateSpan(date(2024, 3, first), date(2024, 3, end))


def test_disjoint_spans_stay_sorted():
    spans = SpanSet([s(10, 12), s(1, 3), s(5, 7)])
    assert spans.spans == (s(1, 3), s(5, 7), s(10, 12))


def test_overlapping_spans_merge():
    assert SpanSet([s(1, 5), s(3, 8)]).spans == (s(1, 8),)
    assert SpanSet([s(3, 8), s(1, 5)]).spans == (s(1, 8),)


def test_adjacent_spans_merge():
    assert SpanSet([s(1, 4), s(4, 6)]).spans == (s(1, 6),)


def test_contained_span_changes_nothing():
    assert SpanSet([s(1, 10), s(3, 4)]).spans == (s(1, 10),)


def test_empty_spans_are_ignored():
    assert not SpanSet([s(3, 3)])


def test_membership_and_totals():
    spans = SpanSet([s(1, 3), s(10, 12)])
    assert date(2024, 3, 2) in spans
    assert date(2024, 3, 3) not in spans
    assert date(2024, 3, 11) in spans
    assert spans.total_days() == 4
    assert len(spans) == 2


def test_remove_splits_spans():
    spans = SpanSet([s(1, 10)])
    spans.remove(s(4, 6))
    assert spans.spans == (s(1, 4), s(6, 10))


def test_remove_across_spans():
    spans = SpanSet([s(1, 5), s(8, 12), s(15, 20)])
    spans.remove(s(3, 16))
    assert spans.spans == (s(1, 3), s(16, 20))


def test_gaps():
    booked = SpanSet([s(4, 9), s(18, 23)])
    assert booked.gaps(s(1, 25)).spans == (s(1, 4), s(9, 18), s(23, 25))


def test_equality_and_copy():
    a = SpanSet([s(1, 3)])
    b = a.copy()
    b.add(s(5, 6))
    assert a == SpanSet([s(1, 3)])
    assert a != b
