import pytest

from minitmpl import Template, TemplateSyntaxError, render


def test_separators_with_loop_last():
    source = "{% for t in tags %}{{ t }}{% if not loop.last %}, {% endif %}{% endfor %}"
    assert render(source, tags=["a", "b", "c"]) == "a, b, c"


def test_all_attributes():
    source = (
        "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.length }}"
        "{% if loop.first %} first{% endif %}{% if loop.last %} last{% endif %};{% endfor %}"
    )
    assert render(source, xs="abc") == "1/0/3/3 first;2/1/2/3;3/2/1/3 last;"


def test_single_item_is_first_and_last():
    assert render("{% for x in xs %}{{ loop.first }}{{ loop.last }}{% endfor %}", xs=[1]) == "TrueTrue"


def test_numbered_rows():
    source = "{% for row in rows %}{{ loop.index }}. {{ row.name }}\n{% endfor %}"
    assert render(source, rows=[{"name": "Ann"}, {"name": "Bob"}]) == "1. Ann\n2. Bob\n"


def test_nested_loops():
    source = "{% for r in rows %}{% for c in r %}{{ loop.index }}{% endfor %}:{{ loop.index }};{% endfor %}"
    assert render(source, rows=[["x", "y"], ["z"]]) == "12:1;1:2;"


def test_generators():
    t = Template("{% for x in xs %}{{ x }}{% if loop.last %}={{ loop.length }}{% endif %}{% endfor %}")
    assert t.render(xs=(i * i for i in range(4))) == "0149=4"


def test_outer_loop_name_restored():
    assert render("{% for x in xs %}{{ loop.index }}{% endfor %}[{{ loop }}]", xs=[1, 2], loop="outer") == "12[outer]"


def test_strict_mode():
    t = Template("{% for x in xs %}{{ loop.index }}{% endfor %}", strict=True)
    assert t.render(xs=[1, 2]) == "12"


@pytest.mark.parametrize(
    "variables",
    [{"xs": []}, {"xs": None}, {}, {"xs": ()}, {"xs": {}}],
    ids=["empty-list", "none", "undefined", "empty-tuple", "empty-dict"],
)
def test_else_when_nothing_to_iterate(variables):
    assert render("{% for x in xs %}[{{ x }}]{% else %}nothing here{% endfor %}", **variables) == "nothing here"


def test_else_not_rendered_when_iterating():
    assert render("{% for x in xs %}[{{ x }}]{% else %}nothing{% endfor %}", xs=[1, 2]) == "[1][2]"


def test_if_else_inside_for_else():
    source = "{% for x in xs %}{% if x %}A{% else %}B{% endif %}{% else %}none{% endfor %}"
    assert render(source, xs=[1, 0]) == "AB"
    assert render(source, xs=[]) == "none"


def test_for_else_inside_if_else():
    source = "{% if show %}{% for x in xs %}{{ x }}{% else %}-{% endfor %}{% else %}hidden{% endif %}"
    assert render(source, show=True, xs=[]) == "-"
    assert render(source, show=False, xs=[1]) == "hidden"


def test_syntax_errors():
    with pytest.raises(TemplateSyntaxError) as err:
        Template("{% for x in xs %}a{% else %}b{% else %}c{% endfor %}")
    assert err.value.message == "unexpected 'else'"
    with pytest.raises(TemplateSyntaxError) as err:
        Template("\n{% for x in xs %}a{% else %}b")
    assert err.value.message == "'for' opened on line 2 is never closed"
