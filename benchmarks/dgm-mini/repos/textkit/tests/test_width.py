from textkit import char_width, display_width


def test_ascii_is_one_column_per_character():
    assert display_width("hello") == 5


def test_wide_characters_take_two_columns():
    assert char_width("日") == 2
    assert display_width("日本語") == 6
    assert display_width("ＡＢ") == 4  # fullwidth Latin


def test_combining_marks_take_no_columns():
    assert display_width("e\u0301") == 1
    assert display_width("zero\u200bwidth") == 9
