"""Balances per account, rolled up the account tree."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

from ledger.accounts import depth, parents
from ledger.journal import Transaction
from ledger.money import Money


@dataclass(frozen=True)
class ReportRow:
    account: str
    amounts: dict[str, Decimal]
    """Balance per currency, sub-accounts included."""


def balances(transactions: Iterable[Transaction]) -> dict[str, dict[str, Decimal]]:
    """What was posted to each account itself, per currency."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for transaction in transactions:
        for posting in transaction.balanced_postings():
            totals[posting.account][posting.amount.currency] += posting.amount.amount
    return {account: dict(amounts) for account, amounts in totals.items()}


def balance_report(transactions: Iterable[Transaction], max_depth: int | None = None) -> list[ReportRow]:
    """One row per account, sorted by name, each including its sub-accounts.

    With `max_depth`, deeper accounts are not listed; their amounts still
    count towards the ancestors that are.
    """
    own = balances(transactions)
    rolled: dict[str, dict[str, Decimal]] = {account: dict(amounts) for account, amounts in own.items()}
    for account, amounts in own.items():
        for parent in parents(account):
            if parent in rolled:
                for currency, amount in amounts.items():
                    rolled[parent][currency] = rolled[parent].get(currency, Decimal(0)) + amount
    if max_depth is not None:
        rolled = {account: amounts for account, amounts in rolled.items() if depth(account) <= max_depth}
    return [ReportRow(account, rolled[account]) for account in sorted(rolled)]


def format_report(rows: Iterable[ReportRow]) -> str:
    """Right-aligned amounts, one line per account and currency."""
    lines = []
    for row in rows:
        for currency in sorted(row.amounts):
            money = str(Money(row.amounts[currency], currency))
            lines.append(f"{money:>16}  {row.account}")
    return "\n".join(lines)
