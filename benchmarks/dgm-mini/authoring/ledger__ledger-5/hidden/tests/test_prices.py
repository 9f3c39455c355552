from datetime import date
from decimal import Decimal

import pytest

from ledger import JournalSyntaxError, Money, Posting, Transaction, UnbalancedTransaction, balances, parse_journal


def eur(amount):
    return Money.of(amount, "EUR")


def usd(amount):
    return Money.of(amount, "USD")


def postings(text):
    (transaction,) = parse_journal(text).transactions
    return transaction.balanced_postings()


def test_unit_price_balances_elided_posting():
    result = postings("2024-03-01 Exchange\n    assets:usd  100.00 USD @ 0.92 EUR\n    assets:eur\n")
    assert result[0].amount == usd("100.00")
    assert result[1].amount == eur("-92.00")


def test_total_price():
    result = postings("2024-03-02 Yen\n    assets:jpy  10000 JPY @@ 61.50 EUR\n    assets:eur  -61.50 EUR\n")
    assert result[0].amount == Money.of("10000", "JPY")
    assert result[0].weight == eur("61.50")


def test_explicit_amounts_must_match_the_cost():
    text = "2024-03-01 Exchange\n    assets:usd  100.00 USD @ 0.92 EUR\n    assets:eur  -91.99 EUR\n"
    with pytest.raises(JournalSyntaxError, match="does not balance") as err:
        parse_journal(text)
    assert err.value.lineno == 1


def test_negative_priced_amounts():
    result = postings("2024-03-01 Sell\n    assets:usd  -50.00 USD @ 0.92 EUR\n    assets:eur\n")
    assert result[1].amount == eur("46.00")
    result = postings("2024-03-02 Sell yen\n    assets:jpy  -10000 JPY @@ 61.50 EUR\n    assets:eur\n")
    assert result[0].weight == eur("-61.50")
    assert result[1].amount == eur("61.50")


def test_unit_price_cost_is_rounded_to_minor_units():
    result = postings("2024-03-01 Buy\n    assets:chf  3 CHF @ 0.333 EUR\n    assets:eur\n")
    assert result[0].weight == eur("1.00")
    assert result[1].amount == eur("-1.00")


def test_several_priced_postings_one_elided():
    text = (
        "2024-03-03 Travel money\n"
        "    assets:usd  100.00 USD @ 0.92 EUR\n"
        "    assets:gbp   50.00 GBP @@ 58.00 EUR\n"
        "    assets:eur\n"
    )
    assert postings(text)[2].amount == eur("-150.00")


def test_accounts_keep_original_currency():
    journal = parse_journal(
        "2024-03-01 Exchange\n    assets:usd  100.00 USD @ 0.92 EUR\n    assets:eur\n"
        "\n2024-03-05 Lunch\n    expenses:food  12.00 USD\n    assets:usd\n"
    )
    assert balances(journal.transactions) == {
        "assets:usd": {"USD": Decimal("88.00")},
        "assets:eur": {"EUR": Decimal("-92.00")},
        "expenses:food": {"USD": Decimal("12.00")},
    }


@pytest.mark.parametrize(
    "posting",
    ["100.00 USD @ 1.00 USD", "100.00 USD @ 0 EUR", "100.00 USD @ -0.92 EUR", "100.00 USD @@ -92 EUR",
     "100.00 USD @", "100.00 USD @ 0.92", "100.00 USD @@@ 92 EUR"],
    ids=["same-currency", "zero-price", "negative-price", "negative-total", "no-price", "no-currency", "triple-at"],
)
def test_invalid_prices(posting):
    text = f"2024-03-01 Exchange\n    assets:eur  -92.00 EUR\n    assets:usd  {posting}\n"
    with pytest.raises(JournalSyntaxError) as err:
        parse_journal(text)
    assert err.value.lineno == 3


def test_programmatic_postings_with_cost():
    transaction = Transaction(
        date(2024, 3, 1),
        "Exchange",
        [Posting("assets:usd", usd("100.00"), eur("92.00")), Posting("assets:eur", None)],
    )
    assert transaction.balanced_postings()[1].amount == eur("-92.00")
    assert Posting("assets:usd", usd("1")).weight == usd("1")
    assert Posting("assets:usd", usd("100.00"), eur("92.00")).weight == eur("92.00")


def test_invalid_programmatic_costs():
    with pytest.raises(ValueError):
        Posting("assets:usd", None, eur("92.00"))
    with pytest.raises(ValueError):
        Posting("assets:usd", usd("100.00"), usd("92.00"))


def test_unpriced_exchange_still_unbalanced():
    transaction = Transaction(date(2024, 3, 1), "x", [Posting("a", usd("100")), Posting("b", eur("-92"))])
    with pytest.raises(UnbalancedTransaction):
        transaction.balanced_postings()
