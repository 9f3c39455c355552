import random
from decimal import Decimal

import pytest

from ledger import Money


def amounts(parts):
    return [str(p.amount) for p in parts]


@pytest.mark.parametrize(
    "amount, currency, ratios, expected",
    [
        ("100.00", "EUR", [1, 1, 1], ["33.34", "33.33", "33.33"]),
        ("0.05", "EUR", [1, 1], ["0.03", "0.02"]),
        ("10", "JPY", [1, 1, 1], ["4", "3", "3"]),
        ("1.000", "KWD", [1, 1, 1], ["0.334", "0.333", "0.333"]),
        ("0.99", "EUR", [70, 20, 10], ["0.69", "0.20", "0.10"]),
        ("1.01", "EUR", [1, 0, 1], ["0.51", "0.00", "0.50"]),
        ("0.03", "EUR", [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")], ["0.01", "0.01", "0.01"]),
        ("-100.00", "EUR", [1, 1, 1], ["-33.34", "-33.33", "-33.33"]),
        ("10.004", "EUR", [1, 1], ["5.00", "5.00"]),
    ],
    ids=["thirds", "two-cents", "jpy", "kwd", "largest-remainder", "zero-ratio", "decimal-ratios", "negative",
         "rounded-first"],
)
def test_examples(amount, currency, ratios, expected):
    parts = Money.of(amount, currency).allocate(ratios)
    assert [Decimal(a) for a in amounts(parts)] == [Decimal(e) for e in expected]
    assert all(p.currency == currency for p in parts)


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD"])
def test_parts_always_add_up(currency):
    rng = random.Random(currency)
    for _ in range(300):
        amount = Money(Decimal(rng.randrange(-10**6, 10**6)).scaleb(-rng.randrange(0, 4)), currency)
        ratios = [rng.randrange(0, 50) for _ in range(rng.randrange(1, 7))]
        if not any(ratios):
            continue
        parts = amount.allocate(ratios)
        assert len(parts) == len(ratios)
        assert sum(p.amount for p in parts) == amount.rounded().amount
        for part in parts:
            assert part.rounded() == part
        exact = [amount.rounded().amount * r / sum(ratios) for r in ratios]
        unit = Decimal(1).scaleb(-{"EUR": 2, "JPY": 0, "KWD": 3}[currency])
        assert all(abs(p.amount - e) < unit for p, e in zip(parts, exact))
