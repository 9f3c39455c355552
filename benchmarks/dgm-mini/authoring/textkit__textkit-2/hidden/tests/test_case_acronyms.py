import pytest

from textkit import camel_case, kebab_case, pascal_case, snake_case, split_words


@pytest.mark.parametrize(
    "text, words",
    [
        ("HTTPServer", ["HTTP", "Server"]),
        ("XMLHttpRequest", ["XML", "Http", "Request"]),
        ("getHTTPResponseCode", ["get", "HTTP", "Response", "Code"]),
        ("IOError", ["IO", "Error"]),
        ("parseJSON2XML", ["parse", "JSON", "2", "XML"]),
        ("MAX_RETRIES", ["MAX", "RETRIES"]),
        ("userID", ["user", "ID"]),
    ],
    ids=["trailing-word", "leading-acronym", "middle", "two-letter", "digits", "all-caps", "final-acronym"],
)
def test_acronyms_are_words(text, words):
    assert split_words(text) == words


def test_converters_with_acronyms():
    assert snake_case("HTTPServer") == "http_server"
    assert kebab_case("XMLHttpRequest") == "xml-http-request"
    assert camel_case("HTTPServer") == "httpServer"
    assert pascal_case("io_error") == "IoError"


def test_single_capital_letters_still_start_words():
    assert split_words("aBC") == ["a", "BC"]
    assert split_words("ABc") == ["A", "Bc"]
