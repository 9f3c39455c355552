"""Split source text into tokens."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from minicalc.errors import CalcSyntaxError


class Kind(enum.Enum):
    NUMBER = "number"
    NAME = "name"
    OP = "operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    END = "end of input"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    pos: int


# Longer operators first: "//" must not lex as two "/".
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>//|[-+*/%^=])
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
    """,
    re.VERBOSE,
)
_KINDS = {
    "number": Kind.NUMBER,
    "name": Kind.NAME,
    "op": Kind.OP,
    "lparen": Kind.LPAREN,
    "rparen": Kind.RPAREN,
    "comma": Kind.COMMA,
}


def tokenize(source: str) -> list[Token]:
    """The tokens of `source`, always ending with an END token."""
    tokens = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise CalcSyntaxError(f"unexpected character {source[pos]!r}", pos)
        if match.lastgroup != "space":
            tokens.append(Token(_KINDS[match.lastgroup], match.group(), pos))
        pos = match.end()
    tokens.append(Token(Kind.END, "", len(source)))
    return tokens
