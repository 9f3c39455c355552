import pytest

from minicalc import ArityError, CalcError, CalcSyntaxError, CalcZeroDivisionError, Session, UnknownNameError
from minicalc import parse_statement, to_source
from minicalc.nodes import Binary, Name, Number


@pytest.fixture
def s():
    return Session()


def test_define_and_call(s):
    assert s.run("f(x) = x^2 + 1") is None
    assert s.run("f(3)") == 10
    assert s.run("f(f(1))") == 5


def test_several_parameters(s):
    s.run("hyp(a, b) = sqrt(a^2 + b^2)")
    assert s.run("hyp(3, 4)") == 5


def test_no_parameters(s):
    s.run("answer() = 6 * 7")
    assert s.run("answer() + 1") == 43


def test_parse_statement_returns_a_definition():
    from minicalc.nodes import FunctionDef

    node = parse_statement("area(w, h) = w * h")
    assert node == FunctionDef("area", ("w", "h"), Binary("*", Name("w"), Name("h")))
    assert parse_statement("k() = 1") == FunctionDef("k", (), Number(1))


def test_parameters_shadow_variables_without_changing_them(s):
    s.run("x = 100")
    s.run("inc(x) = x + 1")
    assert s.run("inc(1)") == 2
    assert s.variables["x"] == 100


def test_free_names_are_looked_up_at_call_time(s):
    s.run("rate = 2")
    s.run("g(v) = v * rate")
    assert s.run("g(3)") == 6
    s.run("rate = 3")
    assert s.run("g(3)") == 9


def test_unknown_free_name_fails_at_call_time(s):
    s.run("g(v) = v * missing")
    with pytest.raises(UnknownNameError):
        s.run("g(1)")


def test_functions_calling_later_defined_functions(s):
    s.run("h(x) = k(x) + 1")
    s.run("k(x) = 2 * x")
    assert s.run("h(5)") == 11


def test_redefinition_replaces(s):
    s.run("f(x) = x")
    s.run("f(x) = 2 * x")
    assert s.run("f(4)") == 8


def test_result_assignable_and_last_result_untouched_by_definition(s):
    s.run("6 * 7")
    s.run("f(x) = x")
    assert s.variables["_"] == 42
    assert s.run("y = f(5)") == 5


def test_arity_errors(s):
    s.run("hyp(a, b) = sqrt(a^2 + b^2)")
    with pytest.raises(ArityError) as err:
        s.run("hyp(3)")
    assert err.value.message == "hyp() takes 2 arguments (1 given)"
    s.run("sq(x) = x * x")
    with pytest.raises(ArityError, match=r"sq\(\) takes 1 argument \(2 given\)"):
        s.run("sq(1, 2)")


@pytest.mark.parametrize(
    "source",
    ["f(1) = 2", "f(x, x) = x", "f(x + 1) = 2", "2 = x", "f(g(x)) = 1"],
    ids=["literal-param", "duplicate-param", "expression-param", "literal-target", "call-param"],
)
def test_invalid_definitions(s, source):
    with pytest.raises(CalcSyntaxError):
        s.run(source)


def test_builtins_cannot_be_redefined(s):
    with pytest.raises(CalcError):
        s.run("sqrt(x) = x")
    assert s.run("sqrt(9)") == 3


def test_direct_recursion_is_an_error(s):
    s.run("r(x) = r(x) + 1")
    with pytest.raises(CalcError):
        s.run("r(1)")


def test_mutual_recursion_is_an_error(s):
    s.run("ping(x) = pong(x)")
    s.run("pong(x) = ping(x) + 1")
    with pytest.raises(CalcError):
        s.run("ping(1)")


def test_function_works_again_after_an_error(s):
    s.run("d(x) = 1 / x")
    with pytest.raises(CalcZeroDivisionError):
        s.run("d(0)")
    assert s.run("d(2)") == 0.5
    s.run("twice(x) = d(x) + d(x)")
    assert s.run("twice(4)") == 0.5


def test_to_source_of_definition():
    assert to_source(parse_statement("hyp(a,b)=sqrt(a*a+b*b)")) == "hyp(a, b) = sqrt(a * a + b * b)"
