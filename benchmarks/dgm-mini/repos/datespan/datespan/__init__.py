"""Whole-day date ranges and what to do with them."""

from datespan.business import BusinessCalendar
from datespan.parse import parse_date, parse_period
from datespan.span import DateSpan
from datespan.spanset import SpanSet

__all__ = ["BusinessCalendar", "DateSpan", "SpanSet", "parse_date", "parse_period"]

__version__ = "0.6.2"
