"""Render-time state: variable scopes, name lookup and output conversion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from minitmpl.errors import UndefinedError
from minitmpl.markup import Markup, escape

_MISSING = object()


class Undefined:
    """What an unknown name evaluates to outside strict mode: empty and falsy."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return ""

    def __bool__(self) -> bool:
        return False

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"Undefined({self.name!r})"


def _lookup(obj: Any, part: str) -> Any:
    if isinstance(obj, Mapping):
        if part in obj:
            return obj[part]
    # Underscore names are off limits: templates are often written by people
    # who must not reach __class__ and friends.
    if part.startswith("_"):
        return _MISSING
    return getattr(obj, part, _MISSING)


class Context:
    def __init__(
        self,
        variables: Mapping[str, Any],
        filters: Mapping[str, Callable[..., Any]],
        *,
        autoescape: bool = True,
        strict: bool = False,
    ) -> None:
        self.scopes: list[dict[str, Any]] = [dict(variables)]
        self.filters = filters
        self.autoescape = autoescape
        self.strict = strict

    def push(self, scope: dict[str, Any] | None = None) -> dict[str, Any]:
        scope = {} if scope is None else scope
        self.scopes.append(scope)
        return scope

    def pop(self) -> None:
        self.scopes.pop()

    def _undefined(self, name: str) -> Any:
        if self.strict:
            raise UndefinedError(f"{name!r} is undefined")
        return Undefined(name)

    def resolve(self, parts: tuple[str, ...]) -> Any:
        """The value of a dotted path: the innermost scope defining the first
        part, then mapping keys or attributes for the rest."""
        first, *rest = parts
        for scope in reversed(self.scopes):
            if first in scope:
                value = scope[first]
                break
        else:
            return self._undefined(first)
        for i, part in enumerate(rest, start=2):
            value = _lookup(value, part)
            if value is _MISSING:
                return self._undefined(".".join(parts[:i]))
        return value

    def to_text(self, value: Any) -> str:
        if value is None or isinstance(value, Undefined):
            return ""
        if isinstance(value, Markup) or not self.autoescape:
            return str(value)
        return escape(value)
