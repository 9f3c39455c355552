"""The template tree. Each node appends its output to a list of strings."""

from __future__ import annotations

from dataclasses import dataclass, field

from minitmpl.context import Context, Undefined
from minitmpl.expr import Expression


class Node:
    def render(self, context: Context, out: list[str]) -> None:
        raise NotImplementedError


def render_all(nodes: list[Node], context: Context, out: list[str]) -> None:
    for node in nodes:
        node.render(context, out)


@dataclass
class Text(Node):
    text: str

    def render(self, context: Context, out: list[str]) -> None:
        out.append(self.text)


@dataclass
class Output(Node):
    expression: Expression

    def render(self, context: Context, out: list[str]) -> None:
        out.append(context.to_text(self.expression.evaluate(context)))


@dataclass
class Condition:
    expression: Expression
    negated: bool = False

    def holds(self, context: Context) -> bool:
        return bool(self.expression.evaluate(context)) != self.negated


@dataclass
class If(Node):
    branches: list[tuple[Condition, list[Node]]]
    otherwise: list[Node] = field(default_factory=list)

    def render(self, context: Context, out: list[str]) -> None:
        for condition, body in self.branches:
            if condition.holds(context):
                render_all(body, context, out)
                return
        render_all(self.otherwise, context, out)


@dataclass(frozen=True)
class Loop:
    """What `loop` holds inside a for loop (the innermost one, when nested)."""

    index0: int
    length: int

    @property
    def index(self) -> int:
        return self.index0 + 1

    @property
    def revindex(self) -> int:
        """Iterations left, this one included: `length` first, 1 last."""
        return self.length - self.index0

    @property
    def first(self) -> bool:
        return self.index0 == 0

    @property
    def last(self) -> bool:
        return self.index0 == self.length - 1


@dataclass
class For(Node):
    target: str
    iterable: Expression
    body: list[Node]
    otherwise: list[Node] = field(default_factory=list)
    """Rendered instead of the body when there is nothing to iterate over."""

    def render(self, context: Context, out: list[str]) -> None:
        items = self.iterable.evaluate(context)
        if items is None or isinstance(items, Undefined):
            items = []
        # Materialised so that loop.length and loop.last are known up front,
        # also for generators.
        items = list(items)
        if not items:
            render_all(self.otherwise, context, out)
            return
        # The loop variables live in their own scope, so they do not overwrite
        # variables of the same name outside the loop, and an inner loop's
        # `loop` hides the outer one only until the inner loop ends.
        scope = context.push()
        try:
            for index0, item in enumerate(items):
                scope[self.target] = item
                scope["loop"] = Loop(index0, len(items))
                render_all(self.body, context, out)
        finally:
            context.pop()
