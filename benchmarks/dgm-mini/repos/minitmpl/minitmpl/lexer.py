"""Split template source into text and tags."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Iterator

from minitmpl.errors import TemplateSyntaxError


class Kind(enum.Enum):
    TEXT = "text"
    VAR = "variable"
    BLOCK = "block"


@dataclass(frozen=True)
class Token:
    kind: Kind
    value: str
    """The text, or the stripped inside of a tag."""
    lineno: int


_TAG = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.DOTALL)
_OPENERS = {"{{": "}}", "{%": "%}", "{#": "#}"}


def tokenize(source: str) -> Iterator[Token]:
    """Tokens in source order; comments are dropped."""
    lineno = 1
    for part in _TAG.split(source):
        if not part:
            continue
        opener = part[:2]
        if opener in _OPENERS and part.endswith(_OPENERS[opener]) and len(part) >= 4:
            inner = part[2:-2].strip()
            if opener == "{{":
                yield Token(Kind.VAR, inner, lineno)
            elif opener == "{%":
                yield Token(Kind.BLOCK, inner, lineno)
        else:
            # A tag opener left in text was never closed.
            for opener in _OPENERS:
                if opener in part:
                    offset = part[: part.index(opener)].count("\n")
                    raise TemplateSyntaxError(f"unclosed {opener!r}", lineno + offset)
            yield Token(Kind.TEXT, part, lineno)
        lineno += part.count("\n")
