import pytest

from minitmpl import Template, TemplateSyntaxError, render


def test_chained_filters():
    assert render("{{ name|trim|upper }}", name="  ada ") == "ADA"


def test_default_for_missing_values():
    assert render("{{ nickname|default('anonymous') }}") == "anonymous"
    assert render("{{ user.nickname|default('anonymous') }}", user={}) == "anonymous"
    assert render("{{ nickname|default('anonymous') }}", nickname="ada") == "ada"


def test_default_with_path_argument():
    assert render("{{ nickname|default(name) }}", name="Ada") == "Ada"


def test_join_and_length():
    assert render("{{ tags|join('-') }} ({{ tags|length }})", tags=["a", "b", "c"]) == "a-b-c (3)"


def test_truncate():
    assert render("{{ text|truncate(12) }}", text="The quick brown fox") == "The quick..."
    assert render("{{ text|truncate(50) }}", text="short") == "short"


def test_replace_first_last():
    assert render("{{ s|replace('a', 'o') }}", s="banana") == "bonono"
    assert render("{{ xs|first }}-{{ xs|last }}", xs=[1, 2, 3]) == "1-3"


def test_custom_filter():
    t = Template("{{ price|money }}", filters={"money": lambda v: f"{v:.2f} EUR"})
    assert t.render(price=3.5) == "3.50 EUR"


def test_filters_output_is_escaped():
    assert render("{{ s|upper }}", s="<a>") == "&lt;A&gt;"


def test_unknown_filter_is_a_syntax_error():
    with pytest.raises(TemplateSyntaxError, match="unknown filter 'nope'") as err:
        Template("line one\n{{ x|nope }}")
    assert err.value.lineno == 2
