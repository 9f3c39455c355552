from textkit import fill, wrap

USAGE = "usage: tool [--verbose] [--config FILE] [--dry-run] TARGET"


def test_hanging_indent_lines_fit_width():
    lines = wrap(USAGE, 24, subsequent_indent="       ")
    assert lines == [
        "usage: tool [--verbose]",
        "       [--config FILE]",
        "       [--dry-run]",
        "       TARGET",
    ]
    assert max(len(line) for line in lines) <= 24


def test_long_initial_indent_does_not_shorten_later_lines():
    lines = wrap("alpha beta gamma delta epsilon", 16, initial_indent="Note:      ")
    assert lines == ["Note:      alpha", "beta gamma delta", "epsilon"]


def test_long_words_are_broken_at_the_continuation_width():
    lines = wrap("x abcdefghijkl", 8, initial_indent="", subsequent_indent="    ")
    assert lines == ["x", "    abcd", "    efgh", "    ijkl"]


def test_fill_passes_indents_through():
    text = fill("one two three four five", 11, initial_indent="- ", subsequent_indent="    ")
    assert text == "- one two\n    three\n    four\n    five"
