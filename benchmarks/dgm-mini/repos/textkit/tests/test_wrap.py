import pytest

from textkit import fill, wrap

TEXT = "The quick brown fox jumps over the lazy dog and keeps running"


def test_lines_fit_width():
    lines = wrap(TEXT, 20)
    assert lines == ["The quick brown fox", "jumps over the lazy", "dog and keeps", "running"]
    assert all(len(line) <= 20 for line in lines)


def test_whitespace_collapses():
    assert wrap("a   b\n\tc", 10) == ["a b c"]


def test_empty_text():
    assert wrap("", 10) == []


def test_hanging_indent():
    assert wrap("one two three four", 10, initial_indent="* ", subsequent_indent="  ") == [
        "* one two",
        "  three",
        "  four",
    ]


def test_long_words_are_broken():
    assert wrap("abcdefghij xy", 4) == ["abcd", "efgh", "ij", "xy"]


def test_long_words_kept_whole():
    assert wrap("abcdefghij xy", 4, break_long_words=False) == ["abcdefghij", "xy"]


def test_wide_characters_count_double():
    assert wrap("日本語 テキスト", 8) == ["日本語", "テキスト"]


def test_indent_too_wide():
    with pytest.raises(ValueError):
        wrap("text", 4, initial_indent="    ")


def test_fill():
    assert fill("one two three", 8) == "one two\nthree"
