"""Output expressions: a literal or a dotted path, followed by filters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

from minitmpl.errors import TemplateSyntaxError

if TYPE_CHECKING:
    from minitmpl.context import Context


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


Operand = Union[Literal, Path]


@dataclass(frozen=True)
class FilterCall:
    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True)
class Expression:
    source: str
    operand: Operand
    filters: tuple[FilterCall, ...]

    def evaluate(self, context: Context) -> Any:
        value = _value(self.operand, context)
        for call in self.filters:
            function = context.filters[call.name]
            value = function(value, *(_value(arg, context) for arg in call.args))
        return value


def _value(operand: Operand, context: Context) -> Any:
    if isinstance(operand, Literal):
        return operand.value
    return context.resolve(operand.parts)


# Strings are scanned as whole tokens, so "|", "," and ")" inside quotes are
# text, not syntax. A backslash escapes the next character in a string.
_LEX = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<path>[A-Za-z_]\w*(?:\.\w+)*)
  | (?P<punct>[|(),])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class _ExpressionParser:
    def __init__(self, text: str, lineno: int, filters: Mapping[str, Callable[..., Any]]) -> None:
        self.text = text
        self.lineno = lineno
        self.filters = filters
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            match = _LEX.match(text, pos)
            if match is None:
                raise self.error()
            if match.lastgroup != "space":
                self.tokens.append((match.lastgroup, match.group()))
            pos = match.end()
        self.index = 0

    def error(self, what: str = "invalid expression") -> TemplateSyntaxError:
        return TemplateSyntaxError(f"{what} {self.text.strip()!r}", self.lineno)

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error()
        self.index += 1
        return token

    def at(self, punct: str) -> bool:
        return self.peek() == ("punct", punct)

    def operand(self) -> Operand:
        kind, value = self.take()
        if kind == "string":
            return Literal(_ESCAPE.sub(r"\1", value[1:-1]))
        if kind == "number":
            return Literal(float(value) if "." in value else int(value))
        if kind == "path":
            return Path(tuple(value.split(".")))
        raise self.error()

    def filter_call(self) -> FilterCall:
        kind, name = self.take()
        if kind != "path" or "." in name:
            raise self.error("invalid filter in")
        if name not in self.filters:
            raise TemplateSyntaxError(f"unknown filter {name!r}", self.lineno)
        args: list[Operand] = []
        if self.at("("):
            self.take()
            while not self.at(")"):
                args.append(self.operand())
                if not self.at(","):
                    break
                self.take()
            if not self.at(")"):
                raise self.error("invalid filter in")
            self.take()
        return FilterCall(name, tuple(args))

    def expression(self) -> Expression:
        if not self.tokens:
            raise TemplateSyntaxError("empty expression", self.lineno)
        operand = self.operand()
        calls = []
        while self.at("|"):
            self.take()
            calls.append(self.filter_call())
        if self.peek() is not None:
            raise self.error()
        return Expression(self.text, operand, tuple(calls))


def parse_expression(text: str, lineno: int, filters: Mapping[str, Callable[..., Any]]) -> Expression:
    """Parse ``operand|filter|filter(arg, ...)``; unknown filters are errors."""
    return _ExpressionParser(text, lineno, filters).expression()
