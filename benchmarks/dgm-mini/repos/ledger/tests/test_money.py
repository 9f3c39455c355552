from decimal import Decimal

import pytest

from ledger import CurrencyMismatch, Money


def test_construction_from_strings_and_decimals():
    assert Money.of("12.50", "EUR").amount == Decimal("12.50")
    assert Money(Decimal("3"), "USD") == Money.of(3, "USD")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        Money.of(0.1, "EUR")


@pytest.mark.parametrize("code", ["eur", "EURO", "", "E1R"])
def test_invalid_currency_codes(code):
    with pytest.raises(ValueError):
        Money.of("1", code)


def test_arithmetic():
    a, b = Money.of("10.25", "EUR"), Money.of("0.75", "EUR")
    assert a + b == Money.of("11.00", "EUR")
    assert a - b == Money.of("9.50", "EUR")
    assert a * 2 == Money.of("20.50", "EUR")
    assert 3 * b == Money.of("2.25", "EUR")
    assert -a == Money.of("-10.25", "EUR")
    assert abs(-a) == a
    assert b < a


def test_currencies_do_not_mix():
    with pytest.raises(CurrencyMismatch):
        Money.of("1", "EUR") + Money.of("1", "USD")
    with pytest.raises(CurrencyMismatch):
        Money.of("1", "EUR") < Money.of("1", "USD")


@pytest.mark.parametrize(
    "amount, currency, expected",
    [("12.3456", "EUR", "12.35"), ("1234.4", "JPY", "1234"), ("1.23456", "KWD", "1.235"), ("-3.14159", "USD", "-3.14")],
)
def test_rounding_to_minor_units(amount, currency, expected):
    assert Money.of(amount, currency).rounded() == Money.of(expected, currency)


def test_str():
    assert str(Money.of("1234.5", "EUR")) == "1234.50 EUR"
    assert str(Money.of("-7", "JPY")) == "-7 JPY"


def test_allocate_even_split():
    parts = Money.of("90.00", "EUR").allocate([1, 1, 1])
    assert parts == [Money.of("30.00", "EUR")] * 3


def test_allocate_by_ratio():
    parts = Money.of("100.00", "EUR").allocate([3, 1])
    assert parts == [Money.of("75.00", "EUR"), Money.of("25.00", "EUR")]


def test_allocate_rejects_bad_ratios():
    with pytest.raises(ValueError):
        Money.of("1", "EUR").allocate([])
    with pytest.raises(ValueError):
        Money.of("1", "EUR").allocate([0, 0])
    with pytest.raises(ValueError):
        Money.of("1", "EUR").allocate([2, -1])
