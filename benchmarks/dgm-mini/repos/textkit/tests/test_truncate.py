import pytest

from textkit import truncate


def test_short_text_is_unchanged():
    assert truncate("short", 10) == "short"
    assert truncate("exactly10!", 10) == "exactly10!"


def test_end():
    assert truncate("a rather long sentence", 10) == "a rather \u2026"


def test_start():
    assert truncate("/usr/local/lib/python3", 9, where="start") == "\u2026/python3"


def test_middle():
    assert truncate("abcdefghijkl", 7, where="middle") == "abc\u2026jkl"
    assert truncate("abcdefghijkl", 6, where="middle") == "abc\u2026kl"


def test_custom_placeholder():
    assert truncate("abcdefghijkl", 8, placeholder="...") == "abcde..."


def test_width_too_small_for_placeholder():
    with pytest.raises(ValueError):
        truncate("abcdef", 2, placeholder="...")


def test_unknown_where():
    with pytest.raises(ValueError):
        truncate("abcdef", 3, where="both")
