"""Currency codes and their minor units (ISO 4217)."""

from __future__ import annotations

import re

# Digits after the decimal point. Only currencies that differ from the usual 2
# need to be listed, but the common ones are spelled out for readability.
MINOR_UNITS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "CAD": 2, "AUD": 2,
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}
DEFAULT_MINOR_UNITS = 2

_CODE = re.compile(r"[A-Z]{3}")


def validate_code(code: str) -> str:
    """`code` if it looks like an ISO 4217 code (three capital letters)."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(f"not a currency code: {code!r}")
    return code


def minor_units(code: str) -> int:
    """How many decimal digits amounts in `code` are rounded to."""
    return MINOR_UNITS.get(code, DEFAULT_MINOR_UNITS)
