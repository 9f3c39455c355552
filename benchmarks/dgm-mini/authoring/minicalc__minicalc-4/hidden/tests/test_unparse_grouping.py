import random

import pytest

from minicalc import evaluate, parse, parse_statement, to_source
from minicalc.nodes import Binary, Call, Name, Number, Unary


@pytest.mark.parametrize(
    "source, expected",
    [
        ("a - (b - c)", "a - (b - c)"),
        ("a - (b + c)", "a - (b + c)"),
        ("a + (b + c)", "a + (b + c)"),
        ("a / (b * c)", "a / (b * c)"),
        ("a // (b % c)", "a // (b % c)"),
        ("(a - b) - c", "a - b - c"),
        ("(a * b) / c", "a * b / c"),
        ("f(a - (b - c), 2)", "f(a - (b - c), 2)"),
        ("-a * b", "-a * b"),
        ("2 ^ -x", "2 ^ -x"),
        ("a - -b", "a - -b"),
    ],
    ids=["sub-sub", "sub-add", "add-add", "div-mul", "floordiv-mod", "left-chain", "mul-div",
         "call-arg", "negated-factor", "negative-exponent", "double-minus"],
)
def test_grouping(source, expected):
    assert to_source(parse(source)) == expected


def test_value_is_preserved():
    source = "8 / (4 / 2)"
    assert evaluate(to_source(parse(source))) == evaluate(source)


@pytest.mark.parametrize(
    "source",
    ["2^(3^2)", "(2^3)^2", "2^3^2", "-2^2", "(-2)^2", "-(2^2)", "2^-1", "-(-a)", "(-a)^b^c",
     "a^(-b)^c", "-a^-b", "x*-a^b", "(x^-a)^b", "x^-a^b", "(a-b)^(c-d)"],
)
def test_round_trip_with_powers_and_unary(source):
    tree = parse(source)
    assert parse(to_source(tree)) == tree


def test_hand_built_trees_round_trip():
    trees = [
        Binary("^", Unary("-", Name("a")), Name("b")),
        Binary("^", Binary("^", Name("a"), Name("b")), Name("c")),
        Binary("^", Name("a"), Binary("^", Name("b"), Name("c"))),
        Binary("*", Binary("^", Name("x"), Unary("-", Name("a"))), Name("b")),
        Binary("^", Binary("^", Name("x"), Unary("-", Name("a"))), Name("b")),
        Unary("-", Binary("-", Name("a"), Name("b"))),
        Call("max", (Binary("-", Name("a"), Binary("-", Name("b"), Name("c"))),)),
    ]
    for tree in trees:
        assert parse(to_source(tree)) == tree, to_source(tree)


def _random_tree(rng, depth):
    if depth == 0 or rng.random() < 0.2:
        return rng.choice([Name("a"), Name("b"), Number(2), Call("f", (Name("c"),))])
    if rng.random() < 0.2:
        return Unary(rng.choice("-+"), _random_tree(rng, depth - 1))
    op = rng.choice(["+", "-", "*", "/", "//", "%", "^"])
    return Binary(op, _random_tree(rng, depth - 1), _random_tree(rng, depth - 1))


def test_random_trees_round_trip():
    rng = random.Random(20240101)
    for _ in range(400):
        tree = _random_tree(rng, 4)
        text = to_source(tree)
        assert parse(text) == tree, text


def test_no_redundant_parentheses():
    assert to_source(parse("((a)) + ((b * c))")) == "a + b * c"
    assert to_source(parse("(a * b) * c")) == "a * b * c"


def test_assignment():
    assert to_source(parse_statement("x = a - (b - c)")) == "x = a - (b - c)"
