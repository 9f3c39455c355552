"""The public entry point: compile once, render many times."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from minitmpl.context import Context
from minitmpl.filters import BUILTIN_FILTERS
from minitmpl.lexer import tokenize
from minitmpl.nodes import render_all
from minitmpl.parser import parse


class Template:
    def __init__(
        self,
        source: str,
        *,
        autoescape: bool = True,
        strict: bool = False,
        filters: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.source = source
        self.autoescape = autoescape
        self.strict = strict
        self.filters = {**BUILTIN_FILTERS, **(filters or {})}
        # Parsing up front reports syntax errors when the template is loaded,
        # not when some rarely taken branch is first rendered.
        self.nodes = parse(tokenize(source), self.filters)

    def render(self, variables: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        context = Context(
            {**(variables or {}), **kwargs}, self.filters, autoescape=self.autoescape, strict=self.strict
        )
        out: list[str] = []
        render_all(self.nodes, context, out)
        return "".join(out)


def render(source: str, **variables: Any) -> str:
    """Compile and render in one go."""
    return Template(source).render(variables)
