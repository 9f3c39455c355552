"""Split configuration text into classified lines.

The lexer knows nothing about sections or keys being valid or repeated; it
only says what each line looks like, so the parser can report problems with
the right line number.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Iterator

from confini.errors import ParseError


class Kind(enum.Enum):
    BLANK = "blank"
    COMMENT = "comment"
    SECTION = "section"
    ENTRY = "entry"
    CONTINUATION = "continuation"


@dataclass(frozen=True)
class Line:
    lineno: int
    kind: Kind
    text: str
    """The line as written, without its line ending."""
    name: str = ""
    """Section name (SECTION) or key (ENTRY)."""
    value: str = ""
    """Value (ENTRY) or the stripped text (CONTINUATION)."""


_SECTION = re.compile(r"\[(?P<name>[^\[\]]*)\]")
# The key may not contain a delimiter; the first "=" or ":" ends it, so
# values may contain both ("url = http://host:80/a=b").
_ENTRY = re.compile(r"(?P<key>[^=:]+?)\s*[=:]\s*(?P<value>.*)")
COMMENT_PREFIXES = ("#", ";")
# Inside a value a comment prefix only counts after whitespace, so values
# such as "#ff0000" or "a;b" survive.
_INLINE_COMMENT = re.compile(r"\s+[#;].*\Z")


def strip_inline_comment(value: str) -> str:
    """`value` without a trailing ``  # comment`` or ``  ; comment``."""
    return _INLINE_COMMENT.sub("", value)


def tokenize(text: str) -> Iterator[Line]:
    """Classify every line of `text`."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            yield Line(lineno, Kind.BLANK, raw)
        elif stripped.startswith(COMMENT_PREFIXES):
            yield Line(lineno, Kind.COMMENT, raw)
        elif raw[0].isspace():
            yield Line(lineno, Kind.CONTINUATION, raw, value=strip_inline_comment(stripped))
        elif match := _SECTION.fullmatch(stripped):
            name = match["name"].strip()
            if not name:
                raise ParseError("empty section name", lineno, raw)
            yield Line(lineno, Kind.SECTION, raw, name=name)
        elif match := _ENTRY.fullmatch(stripped):
            value = strip_inline_comment(match["value"]).rstrip()
            yield Line(lineno, Kind.ENTRY, raw, name=match["key"], value=value)
        else:
            raise ParseError("expected '[section]' or 'key = value'", lineno, raw)
