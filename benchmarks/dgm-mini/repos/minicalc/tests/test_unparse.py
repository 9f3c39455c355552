import pytest

from minicalc import parse, parse_statement, to_source


@pytest.mark.parametrize(
    "source, expected",
    [
        ("1+2*3", "1 + 2 * 3"),
        ("(1+2)*3", "(1 + 2) * 3"),
        ("((x))", "x"),
        ("a - b - c", "a - b - c"),
        ("-(a + b)", "-(a + b)"),
        ("max(1, (x))", "max(1, x)"),
        ("2.5 * y", "2.5 * y"),
    ],
    ids=["precedence", "needed-parens", "redundant-parens", "left-chain", "negated-sum", "call", "float"],
)
def test_minimal_parentheses(source, expected):
    assert to_source(parse(source)) == expected


def test_assignment():
    assert to_source(parse_statement("x=(1+2)")) == "x = 1 + 2"
