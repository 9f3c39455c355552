import pytest

from textkit import slugify


@pytest.mark.parametrize(
    "max_length, expected",
    [(5, "hello"), (6, "hello"), (7, "hello-w"), (11, "hello-world"), (12, "hello-world")],
)
def test_cut_never_leaves_a_trailing_separator(max_length, expected):
    assert slugify("Hello World and friends", max_length=max_length) == expected


def test_single_letter_words():
    assert slugify("a b c d", max_length=2) == "a"


def test_custom_separator_is_stripped_too():
    assert slugify("release notes", sep="_", max_length=8) == "release"


def test_slug_shorter_than_limit_is_untouched():
    assert slugify("Hello World", max_length=50) == "hello-world"
