import pytest

from minitmpl import Markup, Template, UndefinedError, render


def test_text_passes_through():
    assert render("plain text\nwith lines") == "plain text\nwith lines"


def test_variables_and_paths():
    class User:
        name = "Ada"
        _secret = "hidden"

    assert render("{{ user.name }} / {{ info.city }}", user=User(), info={"city": "London"}) == "Ada / London"
    assert render("[{{ user._secret }}]", user=User()) == "[]"


def test_literals():
    assert render("{{ 'single' }} {{ \"double\" }} {{ 42 }} {{ 1.5 }}") == "single double 42 1.5"


def test_undefined_renders_empty():
    assert render("[{{ missing }}][{{ user.missing }}]", user={}) == "[][]"


def test_none_renders_empty():
    assert render("[{{ value }}]", value=None) == "[]"


def test_strict_mode():
    with pytest.raises(UndefinedError, match="'user.email' is undefined"):
        Template("{{ user.email }}", strict=True).render(user={"name": "x"})


def test_autoescape():
    assert render("{{ text }}", text="<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
    assert render("{{ text|safe }}", text="<b>") == "<b>"
    assert render("{{ text }}", text=Markup("<i>ok</i>")) == "<i>ok</i>"
    assert Template("{{ text }}", autoescape=False).render(text="<b>") == "<b>"


def test_comments_are_dropped():
    assert render("a{# note #}b") == "ab"


def test_if_elif_else():
    t = Template("{% if a %}A{% elif b %}B{% else %}C{% endif %}")
    assert t.render(a=1) == "A"
    assert t.render(b=1) == "B"
    assert t.render() == "C"


def test_if_not():
    assert render("{% if not items %}empty{% endif %}", items=[]) == "empty"


def test_for_loop():
    assert render("{% for x in xs %}<{{ x }}>{% endfor %}", xs=[1, 2, 3]) == "<1><2><3>"
    assert render("{% for x in missing %}never{% endfor %}") == ""


def test_for_loop_does_not_leak_its_variable():
    assert render("{% for x in xs %}{{ x }}{% endfor %}{{ x }}", xs=[1, 2], x="outer") == "12outer"


def test_nested_blocks():
    source = "{% for u in users %}{% if u.admin %}{{ u.name|upper }} {% endif %}{% endfor %}"
    users = [{"name": "ann", "admin": True}, {"name": "bob", "admin": False}, {"name": "cy", "admin": True}]
    assert render(source, users=users) == "ANN CY "


def test_readme_example():
    t = Template(
        "Hello {{ user.name|title }}!\n"
        "{% for item in cart %}- {{ item.title }}: {{ item.price }}\n"
        "{% endfor %}{% if not cart %}Your cart is empty.{% endif %}"
    )
    assert t.render(user={"name": "ada lovelace"}, cart=[{"title": "Tea", "price": "3.50"}]) == (
        "Hello Ada Lovelace!\n- Tea: 3.50\n"
    )
    assert t.render(user={"name": "x"}, cart=[]) == "Hello X!\nYour cart is empty."
