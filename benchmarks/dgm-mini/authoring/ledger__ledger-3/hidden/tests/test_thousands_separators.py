from decimal import Decimal

import pytest

from ledger import JournalSyntaxError, parse_journal


def amount_of(text):
    journal = parse_journal(f"2024-01-31 Test\n    assets:bank  {text}\n    income:salary\n")
    return journal.transactions[0].postings[0].amount


@pytest.mark.parametrize(
    "text, amount, currency",
    [
        ("2,500.00 EUR", "2500.00", "EUR"),
        ("-1,250.50 USD", "-1250.50", "USD"),
        ("12,345,678 JPY", "12345678", "JPY"),
        ("999.99 EUR", "999.99", "EUR"),
        ("1234.5 EUR", "1234.5", "EUR"),
    ],
    ids=["salary", "negative", "millions", "no-separator-needed", "without-separators"],
)
def test_accepted(text, amount, currency):
    money = amount_of(text)
    assert money.amount == Decimal(amount)
    assert money.currency == currency


def test_balancing_uses_the_full_amount():
    journal = parse_journal("2024-01-31 Salary\n    assets:bank  2,500.00 EUR\n    income:salary\n")
    assert journal.transactions[0].balanced_postings()[1].amount.amount == Decimal("-2500.00")


@pytest.mark.parametrize(
    "text",
    ["1,25.00 EUR", "12,50 EUR", "1,,250 EUR", ",250 EUR", "1,2500 EUR", "1250, EUR"],
    ids=["short-group", "decimal-comma", "double-comma", "leading-comma", "long-group", "trailing-comma"],
)
def test_rejected(text):
    with pytest.raises(JournalSyntaxError, match="invalid amount") as err:
        amount_of(text)
    assert err.value.lineno == 2
