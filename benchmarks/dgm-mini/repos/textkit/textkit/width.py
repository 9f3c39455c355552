"""Display width of text in a terminal.

Terminals give East Asian wide and fullwidth characters two columns and
combining marks none, so ``len()`` is the wrong measure whenever text has to
line up on screen.
"""

from __future__ import annotations

import unicodedata

# Format characters that render as nothing but are not combining marks.
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")


def char_width(ch: str) -> int:
    """Columns a single code point occupies: 0, 1 or 2."""
    if unicodedata.combining(ch) or ch in _ZERO_WIDTH:
        return 0
    if unicodedata.category(ch) == "Cc":
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    """Columns `text` occupies when printed on one line."""
    return sum(char_width(ch) for ch in text)
