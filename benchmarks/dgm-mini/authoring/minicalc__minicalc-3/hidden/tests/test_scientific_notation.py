import math

import pytest

from minicalc import evaluate, parse, to_source
from minicalc.nodes import Binary, Name, Number
from minicalc.tokens import Kind, tokenize


@pytest.mark.parametrize(
    "source, value",
    [("1.5e-3", 0.0015), ("2E5", 200000.0), ("6.022e23", 6.022e23), (".5e1", 5.0), ("3e+2", 300.0), ("1.e2", 100.0)],
    ids=["negative-exponent", "upper-case", "large", "leading-dot", "explicit-plus", "trailing-dot"],
)
def test_literals(source, value):
    assert evaluate(source) == value


def test_exponent_is_part_of_one_token():
    tokens = tokenize("1.5e-3*2")
    assert [(t.kind, t.text) for t in tokens[:3]] == [(Kind.NUMBER, "1.5e-3"), (Kind.OP, "*"), (Kind.NUMBER, "2")]


def test_literal_with_exponent_is_a_float():
    value = evaluate("1e3")
    assert value == 1000 and isinstance(value, float)


def test_in_expressions():
    assert evaluate("1.5e-3 * 2") == pytest.approx(0.003)
    assert evaluate("2e2 - 1e1") == 190


def test_constant_e_still_works():
    assert evaluate("2*e") == pytest.approx(2 * math.e)
    assert evaluate("e^2") == pytest.approx(math.e ** 2)
    assert parse("2 * e") == Binary("*", Number(2), Name("e"))


def test_unparse_round_trip_of_tiny_and_huge_floats():
    for source in ("0.00001", "12345678901234567890.0", "0.5 * 0.000002"):
        tree = parse(source)
        assert parse(to_source(tree)) == tree
