"""Postings, transactions and the balancing rule."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ledger.accounts import validate_account
from ledger.money import Money


class UnbalancedTransaction(ValueError):
    """A transaction whose postings do not sum to zero."""


@dataclass(frozen=True)
class Posting:
    account: str
    amount: Money | None
    """None: to be filled in so that the transaction balances."""

    def __post_init__(self) -> None:
        validate_account(self.account)


@dataclass
class Transaction:
    date: date
    description: str
    postings: list[Posting] = field(default_factory=list)

    def totals(self) -> dict[str, Decimal]:
        """Sum of the explicit amounts, per currency."""
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for posting in self.postings:
            if posting.amount is not None:
                sums[posting.amount.currency] += posting.amount.amount
        return dict(sums)

    def balanced_postings(self) -> list[Posting]:
        """The postings with the elided amount filled in.

        Raises UnbalancedTransaction when the postings cannot balance.
        """
        elided = [p for p in self.postings if p.amount is None]
        if len(elided) > 1:
            raise UnbalancedTransaction(f"{self._label()}: only one posting may omit its amount")
        # Amounts are compared at the precision they are written with; rounding
        # here would hide real mistakes of a cent.
        open_totals = {cur: total for cur, total in self.totals().items() if total != 0}
        if not elided:
            if open_totals:
                raise UnbalancedTransaction(f"{self._label()}: does not balance ({self._describe(open_totals)})")
            return list(self.postings)
        if len(open_totals) > 1:
            raise UnbalancedTransaction(
                f"{self._label()}: cannot infer the missing amount for several currencies "
                f"({self._describe(open_totals)})"
            )
        if not open_totals:
            raise UnbalancedTransaction(f"{self._label()}: nothing to balance for the posting without amount")
        (currency, total), = open_totals.items()
        filler = Money(-total, currency)
        return [Posting(p.account, filler) if p.amount is None else p for p in self.postings]

    def _label(self) -> str:
        return f"{self.date.isoformat()} {self.description}"

    @staticmethod
    def _describe(totals: dict[str, Decimal]) -> str:
        return ", ".join(f"{amount:+f} {currency}" for currency, amount in sorted(totals.items()))


@dataclass
class Journal:
    transactions: list[Transaction] = field(default_factory=list)

    def add(self, transaction: Transaction) -> None:
        transaction.balanced_postings()  # refuse unbalanced transactions early
        self.transactions.append(transaction)

    def accounts(self) -> list[str]:
        return sorted({p.account for t in self.transactions for p in t.postings})
