import pytest

from minicalc import CalcSyntaxError, parse, parse_statement
from minicalc.nodes import Assign, Binary, Call, Name, Number, Unary


def test_precedence_of_sum_and_product():
    assert parse("1 + 2 * 3") == Binary("+", Number(1), Binary("*", Number(2), Number(3)))


def test_left_associativity():
    assert parse("8 - 4 - 2") == Binary("-", Binary("-", Number(8), Number(4)), Number(2))
    assert parse("8 / 4 / 2") == Binary("/", Binary("/", Number(8), Number(4)), Number(2))


def test_parentheses():
    assert parse("(1 + 2) * 3") == Binary("*", Binary("+", Number(1), Number(2)), Number(3))


def test_unary_minus():
    assert parse("-x * 2") == Binary("*", Unary("-", Name("x")), Number(2))
    assert parse("2 * -x") == Binary("*", Number(2), Unary("-", Name("x")))


def test_calls():
    assert parse("max(1, x, 2 + 3)") == Call("max", (Number(1), Name("x"), Binary("+", Number(2), Number(3))))
    assert parse("f()") == Call("f", ())


def test_int_and_float_literals():
    assert parse("12") == Number(12)
    assert isinstance(parse("12").value, int)
    assert parse("1.5") == Number(1.5)
    assert parse(".5") == Number(0.5)


def test_positions_are_recorded_but_not_compared():
    node = parse("1 +  2")
    assert node.pos == 2
    assert node.right.pos == 5
    assert node == Binary("+", Number(1), Number(2))


@pytest.mark.parametrize(
    "source, message",
    [
        ("1 +", "unexpected end of input (at position 3)"),
        ("(1 + 2", "'(' at position 0 is never closed (at position 6)"),
        ("1 2", "unexpected '2' (at position 2)"),
        ("max(1,", "unexpected end of input (at position 6)"),
        ("* 3", "unexpected '*' (at position 0)"),
    ],
    ids=["dangling-operator", "unclosed-paren", "two-numbers", "unfinished-call", "leading-operator"],
)
def test_syntax_errors(source, message):
    with pytest.raises(CalcSyntaxError) as err:
        parse(source)
    assert str(err.value) == message


def test_assignment_statement():
    assert parse_statement("x = 1 + 2") == Assign("x", Binary("+", Number(1), Number(2)))
    assert parse_statement("x + 1") == Binary("+", Name("x"), Number(1))


def test_assignment_is_not_an_expression():
    with pytest.raises(CalcSyntaxError):
        parse("x = 1")
    with pytest.raises(CalcSyntaxError):
        parse_statement("1 = x")
