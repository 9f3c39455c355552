import random
from datetime import date, timedelta

import pytest

from datespan import BusinessCalendar, DateSpan, parse_period


def by_day(cal, span):
    return sum(1 for day in span if cal.is_business_day(day))


def test_holiday_on_a_sunday_is_not_subtracted():
    cal = BusinessCalendar(holidays=[date(2022, 12, 25), date(2022, 12, 26)])
    assert cal.business_days(parse_period("2022-12")) == 21


def test_holiday_on_a_saturday_is_not_subtracted():
    cal = BusinessCalendar(holidays=[date(2024, 3, 2)])
    assert cal.business_days(parse_period("2024-03")) == 21


def test_duplicate_holidays_count_once():
    cal = BusinessCalendar(holidays=[date(2024, 3, 29), date(2024, 3, 29), date(2024, 4, 1)])
    assert cal.business_days(parse_period("2024-03")) == 20
    assert cal.business_days(parse_period("2024-04")) == 21


def test_holidays_on_a_custom_weekend():
    cal = BusinessCalendar(holidays=[date(2024, 3, 8), date(2024, 3, 10)], weekend=(4, 5))
    week = parse_period("2024-W10")
    assert cal.business_days(week) == 4
    assert cal.business_days(week) == by_day(cal, week)


def test_holidays_may_be_any_iterable():
    cal = BusinessCalendar(holidays=(date(2024, 3, d) for d in (1, 2, 29)))
    assert cal.business_days(parse_period("2024-03")) == 19
    assert not cal.is_business_day(date(2024, 3, 29))


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_counting_day_by_day(seed):
    rng = random.Random(seed)
    start = date(2023, 1, 1) + timedelta(days=rng.randrange(365))
    holidays = [start + timedelta(days=rng.randrange(-30, 120)) for _ in range(25)]
    weekend = rng.choice([(5, 6), (4, 5), (6,), (4, 5, 6)])
    cal = BusinessCalendar(holidays=holidays, weekend=weekend)
    for _ in range(20):
        first = start + timedelta(days=rng.randrange(0, 60))
        span = DateSpan(first, first + timedelta(days=rng.randrange(0, 60)))
        assert cal.business_days(span) == by_day(cal, span)
