import pytest

from minicalc.errors import CalcSyntaxError
from minicalc.tokens import Kind, tokenize


def kinds(source):
    return [(t.kind, t.text) for t in tokenize(source)]


def test_numbers_names_and_operators():
    assert kinds("x1 + 2.5*(3//.5)") == [
        (Kind.NAME, "x1"),
        (Kind.OP, "+"),
        (Kind.NUMBER, "2.5"),
        (Kind.OP, "*"),
        (Kind.LPAREN, "("),
        (Kind.NUMBER, "3"),
        (Kind.OP, "//"),
        (Kind.NUMBER, ".5"),
        (Kind.RPAREN, ")"),
        (Kind.END, ""),
    ]


def test_positions():
    assert [t.pos for t in tokenize("  ab +  1")] == [2, 5, 8, 9]


def test_unexpected_character():
    with pytest.raises(CalcSyntaxError) as err:
        tokenize("1 + $")
    assert err.value.pos == 4
    assert str(err.value) == "unexpected character '$' (at position 4)"
