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


_STRING = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*")
_FILTER = re.compile(r"\s*(?P<name>[A-Za-z_]\w*)\s*(?:\((?P<args>.*)\))?\s*", re.DOTALL)


def parse_operand(text: str, lineno: int) -> Operand:
    text = text.strip()
    if match := _STRING.fullmatch(text):
        return Literal(match[1] if match[1] is not None else match[2])
    if match := _NUMBER.fullmatch(text):
        return Literal(float(text) if match[1] else int(text))
    if _PATH.fullmatch(text):
        return Path(tuple(text.split(".")))
    raise TemplateSyntaxError(f"invalid expression {text!r}", lineno)


def parse_expression(text: str, lineno: int, filters: Mapping[str, Callable[..., Any]]) -> Expression:
    """Parse ``operand|filter|filter(arg, ...)``; unknown filters are errors."""
    head, *filter_parts = text.split("|")
    if not head.strip():
        raise TemplateSyntaxError("empty expression", lineno)
    calls = []
    for part in filter_parts:
        match = _FILTER.fullmatch(part)
        if match is None:
            raise TemplateSyntaxError(f"invalid filter {part.strip()!r}", lineno)
        if match["name"] not in filters:
            raise TemplateSyntaxError(f"unknown filter {match['name']!r}", lineno)
        raw_args = match["args"]
        args = tuple(parse_operand(a, lineno) for a in raw_args.split(",")) if raw_args and raw_args.strip() else ()
        calls.append(FilterCall(match["name"], args))
    return Expression(text, parse_operand(head, lineno), tuple(calls))
