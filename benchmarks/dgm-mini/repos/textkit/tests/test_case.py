import pytest

from textkit import camel_case, kebab_case, pascal_case, snake_case, split_words


@pytest.mark.parametrize(
    "text, words",
    [
        ("parseJsonValue", ["parse", "Json", "Value"]),
        ("ParseJsonValue", ["Parse", "Json", "Value"]),
        ("parse_json_value", ["parse", "json", "value"]),
        ("max-retry_count 3", ["max", "retry", "count", "3"]),
        ("version2", ["version", "2"]),
        ("HTTP", ["HTTP"]),
        ("", []),
    ],
    ids=["camel", "pascal", "snake", "mixed-separators", "digits", "all-caps", "empty"],
)
def test_split_words(text, words):
    assert split_words(text) == words


def test_snake_case():
    assert snake_case("parseJsonValue") == "parse_json_value"
    assert snake_case("Max Retry Count") == "max_retry_count"


def test_kebab_case():
    assert kebab_case("ParseJsonValue") == "parse-json-value"


def test_pascal_case():
    assert pascal_case("parse_json_value") == "ParseJsonValue"


def test_camel_case():
    assert camel_case("parse_json_value") == "parseJsonValue"
    assert camel_case("ParseJsonValue") == "parseJsonValue"
    assert camel_case("") == ""


def test_round_trip_between_conventions():
    name = "user_account_id"
    assert snake_case(camel_case(name)) == name
    assert snake_case(kebab_case(name)) == name
