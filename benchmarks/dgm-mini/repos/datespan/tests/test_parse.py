from datetime import date

import pytest

from datespan import DateSpan, parse_date, parse_period


def test_parse_date():
    assert parse_date(" 2024-02-29 ") == date(2024, 2, 29)
    with pytest.raises(ValueError, match="expected YYYY-MM-DD"):
        parse_date("29.02.2024")


def test_year():
    assert parse_period("2024") == DateSpan(date(2024, 1, 1), date(2025, 1, 1))


def test_month():
    assert parse_period("2024-02") == DateSpan(date(2024, 2, 1), date(2024, 3, 1))
    assert parse_period("2023-12") == DateSpan(date(2023, 12, 1), date(2024, 1, 1))
    with pytest.raises(ValueError):
        parse_period("2024-13")


def test_day():
    assert parse_period("2024-03-05") == DateSpan.day(date(2024, 3, 5))


def test_inclusive_range():
    assert parse_period("2024-03-01/2024-03-10") == DateSpan(date(2024, 3, 1), date(2024, 3, 11))
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_period("2024-03-10/2024-03-01")


def test_iso_week_in_a_year_starting_on_monday():
    assert parse_period("2024-W01") == DateSpan(date(2024, 1, 1), date(2024, 1, 8))
    assert parse_period("2024-W09") == DateSpan(date(2024, 2, 26), date(2024, 3, 4))


def test_iso_week_starting_in_previous_year():
    # 2020-01-01 is a Wednesday, so week 1 starts on Monday 2019-12-30.
    assert parse_period("2020-W01") == DateSpan(date(2019, 12, 30), date(2020, 1, 6))


def test_garbage():
    with pytest.raises(ValueError, match="not a period"):
        parse_period("next week")
