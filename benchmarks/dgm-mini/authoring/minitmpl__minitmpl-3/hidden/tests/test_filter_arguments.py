import pytest

from minitmpl import Template, TemplateSyntaxError, render


@pytest.mark.parametrize(
    "source, expected",
    [
        ('{{ tags|join(", ") }}', "a, b, c"),
        ('{{ tags|join(" | ") }}', "a | b | c"),
        ("{{ tags|join(' , ') }}", "a , b , c"),
        ('{{ tags|join(")") }}', "a)b)c"),
        ('{{ missing|default("n/a, sorry") }}', "n/a, sorry"),
        ('{{ csv|replace(",", ";") }}', "1;2;3"),
        ('{{ call|replace("(", "[")|replace(")", "]") }}', "f[x]"),
        ('{{ tags|join(" | ")|upper }}', "A | B | C"),
        ('{{ tags | join( "-" ) | upper }}', "A-B-C"),
        ('{{ text|truncate( 9 , "~" ) }}', "one two~"),
    ],
    ids=["comma", "pipe", "single-quotes", "paren", "default", "replace-comma", "replace-parens", "chained",
         "spaces", "two-args"],
)
def test_arguments_with_syntax_characters(source, expected):
    variables = {"tags": ["a", "b", "c"], "csv": "1,2,3", "call": "f(x)", "text": "one two three"}
    assert Template(source, autoescape=False).render(variables) == expected


def test_escaped_quotes():
    t = Template(r"""{{ x|default("say \"hi\"") }}|{{ x|default('it\'s') }}""", autoescape=False)
    assert t.render() == "say \"hi\"|it's"


def test_output_is_still_escaped():
    assert render('{{ tags|join(" & ") }}', tags=["a", "b"]) == "a &amp; b"


def test_in_if_and_for():
    source = '{% if csv|replace(",", "") %}{% for x in tags|default(", ") %}[{{ x }}]{% endfor %}{% endif %}'
    assert render(source, csv="1,2", tags=["a", "b"]) == "[a][b]"


def test_path_arguments_still_work():
    assert render("{{ nickname|default(user.name) }}", user={"name": "Ada"}) == "Ada"


@pytest.mark.parametrize(
    "source",
    ['{{ x|default("abc) }}', '{{ x|join(", " }}', '{{ x|join(", ") extra }}', "{{ x|join(,) }}", "{{ x| }}",
     '{{ "a" "b" }}'],
    ids=["unterminated-string", "missing-paren", "trailing-junk", "missing-argument", "missing-filter",
         "two-operands"],
)
def test_malformed_expressions(source):
    with pytest.raises(TemplateSyntaxError) as err:
        Template("first line\n" + source)
    assert err.value.lineno == 2


def test_existing_messages():
    with pytest.raises(TemplateSyntaxError) as err:
        Template('{{ x|nope(", ") }}')
    assert err.value.message == "unknown filter 'nope'"
