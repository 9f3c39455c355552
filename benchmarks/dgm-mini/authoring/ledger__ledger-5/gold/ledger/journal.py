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
    cost: Money | None = None
    """What `amount` cost in another currency, in total and with the same
    sign; for balancing, it replaces the amount."""

    def __post_init__(self) -> None:
        validate_account(self.account)
        if self.cost is None:
            return
        if self.amount is None:
            raise ValueError(f"{self.account}: a posting without amount cannot have a price")
        if self.cost.currency == self.amount.currency:
            raise ValueError(f"{self.account}: price must be in another currency than {self.amount.currency}")
        if self.cost.amount * self.amount.amount < 0 or (self.cost.is_zero() != self.amount.is_zero()):
            raise ValueError(f"{self.account}: cost {self.cost} and amount {self.amount} differ in sign")

    @classmethod
    def at_unit_price(cls, account: str, amount: Money, price: Money) -> Posting:
        """`amount` bought at `price` per unit (``@``); the cost is rounded to
        the price currency's minor unit, as it would be on a statement."""
        if price.amount <= 0:
            raise ValueError(f"{account}: price must be positive, not {price}")
        return cls(account, amount, Money(amount.amount * price.amount, price.currency).rounded())

    @classmethod
    def at_total_price(cls, account: str, amount: Money, total: Money) -> Posting:
        """`amount` bought for `total` altogether (``@@``)."""
        if total.amount <= 0:
            raise ValueError(f"{account}: price must be positive, not {total}")
        return cls(account, amount, total if amount.amount >= 0 else -total)

    @property
    def weight(self) -> Money | None:
        """What the posting contributes to the balance: its cost if it has
        one, else its amount."""
        return self.cost if self.cost is not None else self.amount


@dataclass
class Transaction:
    date: date
    description: str
    postings: list[Posting] = field(default_factory=list)

    def totals(self) -> dict[str, Decimal]:
        """Sum of the explicit amounts (at cost, for priced postings), per currency."""
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for posting in self.postings:
            weight = posting.weight
            if weight is not None:
                sums[weight.currency] += weight.amount
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
