from minicalc import evaluate, parse
from minicalc.nodes import Binary, Name


def test_power_chain_groups_from_the_right():
    assert parse("a ^ b ^ c") == Binary("^", Name("a"), Binary("^", Name("b"), Name("c")))


def test_power_chain_value():
    assert evaluate("2^3^2") == 512
    assert evaluate("2 ^ 2 ^ 2 ^ 2") == 65536


def test_explicit_grouping_still_works():
    assert evaluate("(2^3)^2") == 64


def test_power_still_binds_tighter_than_product():
    assert evaluate("2 * 3 ^ 2") == 18
    assert evaluate("3 ^ 2 * 2") == 18


def test_other_operators_stay_left_associative():
    assert evaluate("100 / 10 / 5") == 2
    assert evaluate("2 - 3 - 4") == -5

