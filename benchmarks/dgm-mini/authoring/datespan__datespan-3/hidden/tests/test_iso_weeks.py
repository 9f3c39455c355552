from datetime import date

import pytest

from datespan import DateSpan, parse_period


@pytest.mark.parametrize(
    "text, monday",
    [
        ("2021-W01", date(2021, 1, 4)),
        ("2022-W01", date(2022, 1, 3)),
        ("2023-W01", date(2023, 1, 2)),
        ("2023-W52", date(2023, 12, 25)),
        ("2026-W01", date(2025, 12, 29)),
        ("2020-W53", date(2020, 12, 28)),
        ("2027-W10", date(2027, 3, 8)),
    ],
)
def test_week_starts_on_the_iso_monday(text, monday):
    assert parse_period(text) == DateSpan(monday, date.fromordinal(monday.toordinal() + 7))


def test_every_week_matches_isocalendar():
    for year in range(1998, 2031):
        for week in range(1, 53):
            span = parse_period(f"{year}-W{week:02d}")
            assert len(span) == 7
            assert span.start.isocalendar()[:3] == (year, week, 1)


@pytest.mark.parametrize("text", ["2021-W53", "2023-W53", "2024-W54", "2024-W00"])
def test_weeks_that_do_not_exist(text):
    with pytest.raises(ValueError):
        parse_period(text)
