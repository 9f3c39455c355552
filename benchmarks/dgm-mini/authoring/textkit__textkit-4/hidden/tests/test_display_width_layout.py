import pytest

from textkit import display_width, format_table, truncate


@pytest.mark.parametrize(
    "width, expected",
    [(7, "日本語…"), (6, "日本…"), (5, "日本…"), (16, "日本語のテキスト")],
    ids=["exact-fit", "wide-char-does-not-fit", "shorter", "no-cut"],
)
def test_truncate_end_counts_columns(width, expected):
    result = truncate("日本語のテキスト", width)
    assert result == expected
    assert display_width(result) <= width


def test_truncate_start_counts_columns():
    assert truncate("データ/設定.ini", 9, where="start") == "\u2026設定.ini"


def test_truncate_middle_counts_columns():
    result = truncate("東京都千代田区", 9, where="middle")
    assert result == "東京\u2026田区"
    assert display_width(result) == 9


def test_truncate_keeps_combining_marks_with_their_letter():
    assert truncate("cafe\u0301 au lait", 5) == "cafe\u0301\u2026"
    assert truncate("e\u0301e\u0301e\u0301", 2, where="start") == "\u2026e\u0301"


def test_text_that_fits_in_columns_is_untouched():
    assert truncate("cafe\u0301", 4) == "cafe\u0301"
    assert truncate("日本", 4) == "日本"


def test_table_aligns_wide_characters():
    out = format_table([["東京", 1], ["Osaka", 22]], headers=["city", "n"], align="lr")
    assert out.splitlines() == [
        "city    n",
        "-----  --",
        "東京    1",
        "Osaka  22",
    ]
    assert len({display_width(line) for line in out.splitlines()}) == 1


def test_table_aligns_combining_accents():
    out = format_table([["cafe\u0301", "x"], ["bread", "y"]])
    assert out.splitlines() == ["cafe\u0301   x", "bread  y"]


def test_table_centers_wide_characters():
    out = format_table([["日本"], ["abcdef"]], align="c")
    assert out.splitlines() == [" 日本", "abcdef"]


def test_table_max_width_in_columns():
    out = format_table([["日本語のテキスト", "x"], ["abc", "y"]], max_width=7)
    assert out.splitlines() == ["日本語\u2026  x", "abc      y"]
