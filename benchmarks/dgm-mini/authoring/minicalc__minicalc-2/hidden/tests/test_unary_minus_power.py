import math

import pytest

from minicalc import evaluate, parse
from minicalc.nodes import Binary, Name, Number, Unary


def test_power_applies_before_negation():
    assert parse("-a ^ b") == Unary("-", Binary("^", Name("a"), Name("b")))


@pytest.mark.parametrize(
    "source, value",
    [("-2^2", -4), ("-2^2 + 1", -3), ("1 - -2^2", 5), ("-(2)^2", -4), ("(-2)^2", 4), ("+2^2", 4)],
    ids=["plain", "in-sum", "after-minus", "parenthesised-base", "negative-base", "unary-plus"],
)
def test_values(source, value):
    assert evaluate(source) == value


def test_negated_square_of_variable():
    assert evaluate("-x^2", {"x": 3}) == -9


def test_gaussian():
    assert evaluate("exp(-x^2 / 2)", {"x": 2}) == pytest.approx(math.exp(-2))


def test_negative_exponent():
    assert evaluate("2^-1") == 0.5
    assert parse("2 ^ -x") == Binary("^", Number(2), Unary("-", Name("x")))


def test_minus_still_binds_tighter_than_products():
    assert parse("-a * b") == Binary("*", Unary("-", Name("a")), Name("b"))
    assert evaluate("-6 / 2 * 3") == -9
