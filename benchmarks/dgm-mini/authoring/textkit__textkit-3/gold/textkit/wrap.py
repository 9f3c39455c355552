"""Greedy word wrapping that measures display width, not code points."""

from __future__ import annotations

from collections import deque

from textkit.width import char_width, display_width


def _split_at_width(word: str, width: int) -> tuple[str, str]:
    """Split `word` so the head fits in `width` columns (never empty)."""
    used = 0
    for i, ch in enumerate(word):
        used += char_width(ch)
        if used > width:
            # Keep at least one character per line or wrapping never ends.
            i = max(i, 1)
            return word[:i], word[i:]
    return word, ""


def wrap(
    text: str,
    width: int = 70,
    *,
    initial_indent: str = "",
    subsequent_indent: str = "",
    break_long_words: bool = True,
) -> list[str]:
    """Wrap `text` into lines of at most `width` columns, indents included.

    Runs of whitespace collapse to one space. A word longer than a line is cut
    across lines when `break_long_words` is true, otherwise it gets a line of
    its own and overflows.
    """
    first_budget = width - display_width(initial_indent)
    later_budget = width - display_width(subsequent_indent)
    if first_budget < 1 or later_budget < 1:
        raise ValueError(f"width {width} leaves no room for text after the indent")

    words = deque(text.split())
    lines: list[list[str]] = []
    line: list[str] = []
    used = 0
    while words:
        budget = later_budget if lines else first_budget
        word = words.popleft()
        needed = display_width(word) + (used + 1 if line else 0)
        if needed <= budget:
            line.append(word)
            used = needed
            continue
        if line:
            # Start a new line and look at this word again there.
            lines.append(line)
            line, used = [], 0
            words.appendleft(word)
            continue
        if break_long_words:
            head, tail = _split_at_width(word, budget)
            lines.append([head])
            if tail:
                words.appendleft(tail)
        else:
            lines.append([word])
    if line:
        lines.append(line)
    return [
        (initial_indent if i == 0 else subsequent_indent) + " ".join(words_on_line)
        for i, words_on_line in enumerate(lines)
    ]


def fill(text: str, width: int = 70, **kwargs) -> str:
    """`wrap` joined with newlines."""
    return "\n".join(wrap(text, width, **kwargs))
