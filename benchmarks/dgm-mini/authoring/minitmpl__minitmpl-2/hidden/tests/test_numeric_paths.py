import pytest

from minitmpl import Template, UndefinedError, render


def test_list_index():
    assert render("{{ items.0 }}-{{ items.2 }}", items=["a", "b", "c"]) == "a-c"


def test_index_then_key():
    assert render("First: {{ items.0.title }}", items=[{"title": "Tea"}]) == "First: Tea"


def test_nested_sequences():
    assert render("{{ grid.1.0 }}", grid=[[1, 2], [3, 4]]) == "3"
    assert render("{{ pair.1 }}", pair=("x", "y")) == "y"


def test_string_index():
    assert render("{{ word.0|upper }}", word="hello") == "H"


def test_index_out_of_range_is_undefined():
    assert render("[{{ items.5 }}]", items=["a"]) == "[]"
    assert render("{{ items.5|default('none') }}", items=["a"]) == "none"
    with pytest.raises(UndefinedError, match="'items.5' is undefined"):
        Template("{{ items.5 }}", strict=True).render(items=["a"])


def test_mapping_string_key_wins():
    assert render("{{ m.1 }}", m={"1": "text key", 1: "int key"}) == "text key"


def test_mapping_int_key():
    assert render("{{ medals.1 }}/{{ medals.2 }}", medals={1: "gold", 2: "silver"}) == "gold/silver"


def test_in_loops_and_conditions():
    source = "{% for row in rows %}{% if row.1 %}{{ row.0 }};{% endif %}{% endfor %}"
    assert render(source, rows=[("a", True), ("b", False), ("c", 1)]) == "a;c;"
