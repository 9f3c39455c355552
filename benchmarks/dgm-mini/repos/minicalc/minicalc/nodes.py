"""Syntax tree nodes.

Positions are excluded from comparisons so that trees can be compared by
structure (e.g. a tree and the tree of its unparsed source).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Number:
    value: int | float
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Name:
    id: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Assign:
    """`name = value`, only valid as a whole statement."""

    name: str
    value: Node
    pos: int = field(default=0, compare=False)


Node = Union[Number, Name, Unary, Binary, Call]
Statement = Union[Node, Assign]
