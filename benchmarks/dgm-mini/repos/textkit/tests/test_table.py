import pytest

from textkit import format_table


def test_basic_table_with_headers():
    out = format_table([["apples", 3], ["pears", 12]], headers=["fruit", "n"], align="lr")
    assert out.splitlines() == [
        "fruit    n",
        "------  --",
        "apples   3",
        "pears   12",
    ]


def test_without_headers_and_none_cells():
    out = format_table([["a", None, "c"], ["dd"]])
    assert out.splitlines() == ["a     c", "dd"]


def test_center_alignment():
    out = format_table([["x"], ["xxxxx"]], align="c")
    assert out.splitlines() == ["  x", "xxxxx"]


def test_max_width_truncates_cells():
    out = format_table([["a very long cell", "b"]], max_width=6)
    assert out == "a ver\u2026  b"


def test_bad_alignment():
    with pytest.raises(ValueError):
        format_table([["a"]], align="x")
