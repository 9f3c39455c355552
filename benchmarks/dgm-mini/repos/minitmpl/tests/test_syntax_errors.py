import pytest

from minitmpl import Template, TemplateSyntaxError


@pytest.mark.parametrize(
    "source, lineno, message",
    [
        ("{% if x %}\nno end", 1, "'if' opened on line 1 is never closed"),
        ("a\n{% for x in xs %}", 2, "'for' opened on line 2 is never closed"),
        ("{% endif %}", 1, "unexpected 'endif'"),
        ("\n\n{% include 'x' %}", 3, "unknown tag 'include'"),
        ("{% for in xs %}{% endfor %}", 1, "expected 'for <name> in <expression>'"),
        ("text {{ oops", 1, "unclosed '{{'"),
        ("{{ }}", 1, "empty expression"),
        ("{{ 3x }}", 1, "invalid expression '3x'"),
        ("{% if %}{% endif %}", 1, "missing condition"),
    ],
    ids=["unclosed-if", "unclosed-for", "stray-endif", "unknown-tag", "bad-for", "unclosed-var", "empty", "bad-operand",
         "empty-if"],
)
def test_errors(source, lineno, message):
    with pytest.raises(TemplateSyntaxError) as err:
        Template(source)
    assert err.value.lineno == lineno
    assert err.value.message == message
