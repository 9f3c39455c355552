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


@dataclass
class For(Node):
    target: str
    iterable: Expression
    body: list[Node]

    def render(self, context: Context, out: list[str]) -> None:
        items = self.iterable.evaluate(context)
        if items is None or isinstance(items, Undefined):
            return
        # The loop variable lives in its own scope, so it does not overwrite a
        # variable of the same name outside the loop.
        scope = context.push()
        try:
            for item in items:
                scope[self.target] = item
                render_all(self.body, context, out)
        finally:
            context.pop()
