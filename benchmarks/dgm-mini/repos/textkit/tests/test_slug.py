import pytest

from textkit import slugify


def test_basic():
    assert slugify("Hello, World!") == "hello-world"


def test_accents_are_folded():
    assert slugify("Crème brûlée à la carte") == "creme-brulee-a-la-carte"


def test_unrepresentable_characters_are_dropped():
    assert slugify("東京 Tokyo") == "tokyo"


def test_custom_separator_and_case():
    assert slugify("Release Notes 2.0", sep="_", lowercase=False) == "Release_Notes_2_0"


def test_max_length_cuts_long_slugs():
    assert slugify("abcdefghij", max_length=4) == "abcd"
    assert len(slugify("the quick brown fox", max_length=9)) <= 9


def test_max_length_must_be_positive():
    with pytest.raises(ValueError):
        slugify("x", max_length=0)
