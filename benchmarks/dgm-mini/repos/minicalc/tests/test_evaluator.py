import math

import pytest

from minicalc import ArityError, CalcError, CalcZeroDivisionError, UnknownNameError, evaluate


@pytest.mark.parametrize(
    "source, value",
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ^ 10", 1024),
        ("2 ^ 0.5", 2 ** 0.5),
        ("-3 + 5", 2),
        ("2 * -3", -6),
        ("+4", 4),
        ("10 - 4 - 3", 3),
        ("2 ^ 64", 18446744073709551616),
    ],
    ids=["precedence", "parens", "division", "floor-division", "remainder", "power", "root",
         "unary-minus", "negative-operand", "unary-plus", "left-assoc", "big-int"],
)
def test_arithmetic(source, value):
    assert evaluate(source) == value


def test_integers_stay_integers():
    assert isinstance(evaluate("3 * 4 - 2"), int)
    assert isinstance(evaluate("6 / 3"), float)


def test_constants_and_variables():
    assert evaluate("2 * pi") == pytest.approx(math.tau)
    assert evaluate("x * y", {"x": 3, "y": 4}) == 12


def test_functions():
    assert evaluate("sqrt(16) + abs(-2)") == 6
    assert evaluate("max(1, 7, 3)") == 7
    assert evaluate("round(2.71828, 2)") == 2.72
    assert evaluate("log(8, 2)") == pytest.approx(3)
    assert evaluate("hypot(3, 4)") == 5


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="unknown variable 'x'"):
        evaluate("1 + x")
    with pytest.raises(UnknownNameError, match="unknown function 'nope'"):
        evaluate("nope(1)")


def test_arity_errors():
    with pytest.raises(ArityError) as err:
        evaluate("sqrt(1, 2)")
    assert err.value.message == "sqrt() takes 1 argument (2 given)"
    with pytest.raises(ArityError, match=r"round\(\) takes 1 or 2 arguments \(0 given\)"):
        evaluate("round()")
    with pytest.raises(ArityError, match=r"max\(\) takes at least 1 argument \(0 given\)"):
        evaluate("max()")


def test_division_by_zero():
    with pytest.raises(CalcZeroDivisionError) as err:
        evaluate("1 + 1 / 0")
    assert err.value.pos == 6


def test_domain_errors():
    with pytest.raises(CalcError, match=r"math domain error in sqrt\(\)"):
        evaluate("sqrt(-1)")
    with pytest.raises(CalcError, match="not a real number"):
        evaluate("(0 - 8) ^ 0.5")
