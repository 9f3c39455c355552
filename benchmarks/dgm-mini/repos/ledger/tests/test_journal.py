from datetime import date

import pytest

from ledger import Journal, Money, Posting, Transaction, UnbalancedTransaction


def eur(amount):
    return Money.of(amount, "EUR")


def tx(*postings):
    return Transaction(date(2024, 1, 5), "test", [Posting(a, m) for a, m in postings])


def test_balanced_transaction():
    t = tx(("expenses:food", eur("42.50")), ("assets:bank", eur("-42.50")))
    assert t.balanced_postings() == t.postings


def test_elided_amount_is_filled_in():
    t = tx(("expenses:food", eur("42.50")), ("expenses:drinks", eur("7.50")), ("assets:bank", None))
    assert t.balanced_postings()[-1] == Posting("assets:bank", eur("-50.00"))


def test_unbalanced():
    with pytest.raises(UnbalancedTransaction, match=r"does not balance \(\+0\.01 EUR\)"):
        tx(("expenses:food", eur("42.51")), ("assets:bank", eur("-42.50"))).balanced_postings()


def test_two_elided_amounts():
    with pytest.raises(UnbalancedTransaction, match="only one posting"):
        tx(("expenses:food", eur("1")), ("a", None), ("b", None)).balanced_postings()


def test_balancing_is_per_currency():
    t = tx(
        ("assets:eur", eur("10")),
        ("income:eur", eur("-10")),
        ("assets:usd", Money.of("5", "USD")),
        ("income:usd", Money.of("-5", "USD")),
    )
    assert t.balanced_postings() == t.postings


def test_missing_amount_with_several_open_currencies():
    with pytest.raises(UnbalancedTransaction, match="several currencies"):
        tx(("a", eur("10")), ("b", Money.of("5", "USD")), ("c", None)).balanced_postings()


def test_invalid_account_name():
    with pytest.raises(ValueError):
        Posting("assets::bank", eur("1"))


def test_journal_refuses_unbalanced_transactions():
    journal = Journal()
    with pytest.raises(UnbalancedTransaction):
        journal.add(tx(("a", eur("1"))))
    journal.add(tx(("b:x", eur("1")), ("a", None)))
    assert journal.accounts() == ["a", "b:x"]
