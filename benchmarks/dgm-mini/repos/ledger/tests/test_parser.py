from datetime import date
from decimal import Decimal

import pytest

from ledger import JournalSyntaxError, Money, Posting, parse_journal

JOURNAL = """\
; household books
2024-01-05 Groceries
    expenses:food           42.50 EUR
    assets:bank:checking

# salary
2024-01-31 Salary   ; monthly
    assets:bank:checking  2500.00 EUR
    income:salary        -2500.00 EUR

2024-02-02 Dinner with Sam
    expenses:eating out	30 EUR
    liabilities:sam       -15.00 EUR  ; Sam pays half later
    assets:cash
"""


def test_transactions():
    journal = parse_journal(JOURNAL)
    assert [t.description for t in journal.transactions] == ["Groceries", "Salary", "Dinner with Sam"]
    assert journal.transactions[0].date == date(2024, 1, 5)


def test_postings():
    first = parse_journal(JOURNAL).transactions[0]
    assert first.postings == [
        Posting("expenses:food", Money.of("42.50", "EUR")),
        Posting("assets:bank:checking", None),
    ]


def test_account_names_with_spaces_and_tab_separator():
    dinner = parse_journal(JOURNAL).transactions[2]
    assert dinner.postings[0] == Posting("expenses:eating out", Money.of("30", "EUR"))
    assert dinner.balanced_postings()[2].amount.amount == Decimal("-15.00")


def test_hash_inside_description_is_kept():
    journal = parse_journal("2024-01-01 Invoice #12\n    a  1 EUR\n    b\n")
    assert journal.transactions[0].description == "Invoice #12"


@pytest.mark.parametrize(
    "text, lineno, message",
    [
        ("    a  1 EUR\n", 1, "posting outside of a transaction"),
        ("2024-01-01 x\n    a  1 EUR\n    b\nnot a header\n", 4, "expected a transaction header"),
        ("2024-02-30 x\n    a  1 EUR\n    b\n", 1, "invalid date"),
        ("2024-01-01 x\n    a  one EUR\n    b\n", 2, "invalid amount 'one EUR'"),
        ("2024-01-01 x\n    a  1 EUR\n    b  2 EUR\n", 1, "does not balance"),
        ("2024-01-01 x\n\n2024-01-02 y\n    a  1 EUR\n    b\n", 1, "without postings"),
    ],
    ids=["orphan-posting", "bad-header", "bad-date", "bad-amount", "unbalanced", "empty-transaction"],
)
def test_errors(text, lineno, message):
    with pytest.raises(JournalSyntaxError, match=message) as err:
        parse_journal(text)
    assert err.value.lineno == lineno
