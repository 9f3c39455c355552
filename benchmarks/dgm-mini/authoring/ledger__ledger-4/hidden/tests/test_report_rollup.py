from decimal import Decimal

from ledger import balance_report, format_report, parse_journal

README_JOURNAL = """\
2024-01-05 Groceries
    expenses:food           42.50 EUR
    assets:bank:checking

2024-01-31 Salary
    assets:bank:checking  2500.00 EUR
    income:salary
"""

MIXED = """\
2024-02-01 Trip
    expenses:travel:flights   300.00 EUR
    expenses:travel:hotel     120.00 USD
    assets:bank:eur          -300.00 EUR
    assets:bank:usd          -120.00 USD

2024-02-03 Snacks
    expenses:food               5.00 EUR
    assets:cash
"""


def table(rows):
    return {row.account: row.amounts for row in rows}


def test_readme_report():
    rows = balance_report(parse_journal(README_JOURNAL).transactions)
    assert format_report(rows) == (
        "     2457.50 EUR  assets\n"
        "     2457.50 EUR  assets:bank\n"
        "     2457.50 EUR  assets:bank:checking\n"
        "       42.50 EUR  expenses\n"
        "       42.50 EUR  expenses:food\n"
        "    -2500.00 EUR  income\n"
        "    -2500.00 EUR  income:salary"
    )


def test_parents_are_rolled_up_per_currency():
    rows = table(balance_report(parse_journal(MIXED).transactions))
    assert rows["expenses"] == {"EUR": Decimal("305.00"), "USD": Decimal("120.00")}
    assert rows["expenses:travel"] == {"EUR": Decimal("300.00"), "USD": Decimal("120.00")}
    assert rows["assets"] == {"EUR": Decimal("-305.00"), "USD": Decimal("-120.00")}
    assert rows["assets:bank"] == {"EUR": Decimal("-300.00"), "USD": Decimal("-120.00")}


def test_rows_are_sorted_by_account():
    accounts = [row.account for row in balance_report(parse_journal(MIXED).transactions)]
    assert accounts == sorted(accounts)
    assert len(accounts) == len(set(accounts)) == 10


def test_max_depth_one_summarises_top_level():
    rows = table(balance_report(parse_journal(README_JOURNAL).transactions, max_depth=1))
    assert rows == {
        "assets": {"EUR": Decimal("2457.50")},
        "expenses": {"EUR": Decimal("42.50")},
        "income": {"EUR": Decimal("-2500.00")},
    }


def test_max_depth_two():
    rows = table(balance_report(parse_journal(MIXED).transactions, max_depth=2))
    assert sorted(rows) == ["assets", "assets:bank", "assets:cash", "expenses", "expenses:food", "expenses:travel"]
    assert rows["expenses:travel"] == {"EUR": Decimal("300.00"), "USD": Decimal("120.00")}


def test_parent_with_own_postings_still_counts_once():
    text = "2024-01-06 Coffee\n    expenses  3.20 EUR\n    expenses:food:out  1.80 EUR\n    assets:cash\n"
    rows = table(balance_report(parse_journal(text).transactions))
    assert rows["expenses"] == {"EUR": Decimal("5.00")}
    assert rows["expenses:food"] == {"EUR": Decimal("1.80")}
