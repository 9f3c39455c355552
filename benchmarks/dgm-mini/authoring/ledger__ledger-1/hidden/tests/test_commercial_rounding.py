import pytest

from ledger import Money


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        ("0.125", "USD", "0.13"),
        ("2.345", "EUR", "2.35"),
        ("2.335", "EUR", "2.34"),
        ("-2.345", "EUR", "-2.35"),
        ("10.005", "EUR", "10.01"),
        ("1234.5", "JPY", "1235"),
        ("1233.5", "JPY", "1234"),
        ("1.2345", "KWD", "1.235"),
        ("2.3449", "EUR", "2.34"),
    ],
)
def test_halves_round_away_from_zero(amount, currency, expected):
    assert Money.of(amount, currency).rounded() == Money.of(expected, currency)


def test_str_uses_the_same_rounding():
    assert str(Money.of("10.005", "EUR")) == "10.01 EUR"
    assert str(Money.of("-0.5", "JPY")) == "-1 JPY"
