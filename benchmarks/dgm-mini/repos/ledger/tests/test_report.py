from decimal import Decimal

from ledger import ReportRow, balance_report, balances, format_report, parse_journal
from ledger.accounts import depth, parents, truncate

JOURNAL = """\
2024-01-05 Groceries
    expenses:food   42.50 EUR
    assets:cash

2024-01-06 Coffee
    expenses        3.20 EUR
    assets:cash
"""


def test_account_helpers():
    assert parents("assets:bank:checking") == ["assets", "assets:bank"]
    assert parents("assets") == []
    assert depth("assets:bank") == 2
    assert truncate("assets:bank:checking", 2) == "assets:bank"


def test_balances_per_account():
    journal = parse_journal(JOURNAL)
    assert balances(journal.transactions) == {
        "expenses:food": {"EUR": Decimal("42.50")},
        "expenses": {"EUR": Decimal("3.20")},
        "assets:cash": {"EUR": Decimal("-45.70")},
    }


def test_parent_with_own_postings_includes_children():
    rows = balance_report(parse_journal(JOURNAL).transactions)
    by_account = {row.account: row.amounts for row in rows}
    assert by_account["expenses"] == {"EUR": Decimal("45.70")}
    assert by_account["expenses:food"] == {"EUR": Decimal("42.50")}


def test_format_report():
    rows = [ReportRow("assets:cash", {"EUR": Decimal("-45.7"), "USD": Decimal("3")}), ReportRow("expenses", {"EUR": Decimal("45.70")})]
    assert format_report(rows) == (
        "      -45.70 EUR  assets:cash\n"
        "        3.00 USD  assets:cash\n"
        "       45.70 EUR  expenses"
    )
