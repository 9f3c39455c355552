from datetime import date

import pytest

from datespan import BusinessCalendar, DateSpan, parse_period


def test_weekends_are_not_business_days():
    cal = BusinessCalendar()
    assert cal.is_business_day(date(2024, 3, 1))  # Friday
    assert not cal.is_business_day(date(2024, 3, 2))  # Saturday


def test_holidays_are_not_business_days():
    cal = BusinessCalendar(holidays=[date(2024, 3, 29)])
    assert not cal.is_business_day(date(2024, 3, 29))


def test_count_in_month():
    assert BusinessCalendar().business_days(parse_period("2024-03")) == 21
    assert BusinessCalendar(holidays=[date(2024, 3, 29)]).business_days(parse_period("2024-03")) == 20


def test_count_matches_day_by_day_for_odd_lengths():
    cal = BusinessCalendar(holidays=[date(2024, 3, 12)])
    for length in range(0, 20):
        span = DateSpan(date(2024, 3, 7), date(2024, 3, 7 + length))
        assert cal.business_days(span) == sum(1 for day in span if cal.is_business_day(day))


def test_other_weekend():
    cal = BusinessCalendar(weekend=(4, 5))  # Friday and Saturday
    assert cal.business_days(parse_period("2024-W10")) == 5
    assert not cal.is_business_day(date(2024, 3, 8))


def test_bad_weekend():
    with pytest.raises(ValueError):
        BusinessCalendar(weekend=range(7))
    with pytest.raises(ValueError):
        BusinessCalendar(weekend=(7,))


def test_add_business_days():
    cal = BusinessCalendar(holidays=[date(2024, 4, 1)])
    assert cal.add_business_days(date(2024, 3, 28), 1) == date(2024, 3, 29)
    assert cal.add_business_days(date(2024, 3, 29), 1) == date(2024, 4, 2)
    assert cal.add_business_days(date(2024, 4, 2), -1) == date(2024, 3, 29)
    assert cal.add_business_days(date(2024, 3, 30), 0) == date(2024, 3, 30)
