import pytest

from minitmpl import render


@pytest.mark.parametrize(
    "value, expected",
    [(0, "0"), (0.0, "0.0"), (False, "False"), ("", ""), ([], "[]")],
    ids=["zero", "float-zero", "false", "empty-string", "empty-list"],
)
def test_falsy_values_are_kept(value, expected):
    assert render("{{ value|default('fallback') }}", value=value) == expected


def test_none_uses_the_fallback():
    assert render("{{ value|default('fallback') }}", value=None) == "fallback"


def test_undefined_uses_the_fallback():
    assert render("{{ value|default('fallback') }}") == "fallback"
    assert render("{{ order.discount|default('n/a') }}", order={}) == "n/a"


def test_order_email():
    source = "Discount: {{ discount|default('n/a') }}%, gift wrap: {{ wrap|default('unknown') }}"
    assert render(source, discount=0, wrap=False) == "Discount: 0%, gift wrap: False"
