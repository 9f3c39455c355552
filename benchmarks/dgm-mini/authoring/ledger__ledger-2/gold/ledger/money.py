"""Money: an exact decimal amount in one currency."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Sequence, Union

from ledger.currency import minor_units, validate_code

Number = Union[int, Decimal]


class CurrencyMismatch(ValueError):
    """Arithmetic or comparison between different currencies."""


def _decimal(value: object) -> Decimal:
    # Floats are refused outright: Decimal(0.1) is 0.1000000000000000055...
    if isinstance(value, float):
        raise TypeError("use str or Decimal for money amounts, not float")
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise TypeError(f"not an amount: {value!r}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _decimal(self.amount))
        validate_code(self.currency)

    @classmethod
    def of(cls, amount: str | Number, currency: str) -> Money:
        return cls(_decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    # -- arithmetic -----------------------------------------------------------------

    def _check(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"expected Money, not {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._check(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._check(other).amount, self.currency)

    def __mul__(self, factor: Number) -> Money:
        if isinstance(factor, Money):
            raise TypeError("cannot multiply money by money")
        return Money(self.amount * _decimal(factor), self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._check(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._check(other).amount

    def is_zero(self) -> bool:
        return self.amount == 0

    # -- rounding and splitting ---------------------------------------------------------

    def rounded(self) -> Money:
        """Rounded to the currency's minor unit."""
        exponent = Decimal(1).scaleb(-minor_units(self.currency))
        return Money(self.amount.quantize(exponent), self.currency)

    def allocate(self, ratios: Sequence[Number]) -> list[Money]:
        """Split into parts proportional to `ratios`, each in whole minor units
        (e.g. a bill shared 2:1, or a discount spread over invoice lines).

        The parts add up exactly to the amount rounded to minor units: rounding
        each share on its own would create or lose cents. Every part first gets
        its share rounded down; the minor units left over go one each to the
        parts that lost the most by that, earlier parts first on ties. A
        negative amount is split like its absolute value, then negated.
        """
        if not ratios:
            raise ValueError("need at least one ratio")
        weights = [_decimal(r) for r in ratios]
        if any(w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError("ratios must be non-negative and not all zero")
        total_weight = sum(weights)
        places = minor_units(self.currency)
        units = int(self.rounded().amount.scaleb(places))
        sign = -1 if units < 0 else 1
        units = abs(units)
        exact = [units * w / total_weight for w in weights]
        shares = [int(e) for e in exact]  # int() truncates: rounds these down
        leftover = units - sum(shares)
        by_loss = sorted(range(len(shares)), key=lambda i: (shares[i] - exact[i], i))
        for i in by_loss[:leftover]:
            shares[i] += 1
        unit = Decimal(1).scaleb(-places)
        return [Money(sign * share * unit, self.currency) for share in shares]

    # -- display -----------------------------------------------------------------

    def __str__(self) -> str:
        return f"{self.rounded().amount:f} {self.currency}"
