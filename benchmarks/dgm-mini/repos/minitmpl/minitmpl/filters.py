"""Built-in filters. A filter gets the value and the arguments written after it."""

from __future__ import annotations

from typing import Any, Callable

from minitmpl.markup import Markup, escape


def default(value: Any, fallback: Any = "") -> Any:
    """`fallback` when the value is missing."""
    return value if value else fallback


def join(value: Any, separator: str = "") -> str:
    return separator.join(str(item) for item in value)


def length(value: Any) -> int:
    return len(value)


def truncate(value: Any, size: int = 80, end: str = "...") -> str:
    """At most `size` characters, `end` included, cut at a word boundary if possible."""
    text = str(value)
    if len(text) <= size:
        return text
    keep = max(size - len(end), 0)
    cut = text[:keep]
    # Back up to the last word boundary unless the cut already is one.
    if not text[keep].isspace() and " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + end


def replace(value: Any, old: str, new: str) -> str:
    return str(value).replace(old, new)


def first(value: Any) -> Any:
    return next(iter(value), None)


def last(value: Any) -> Any:
    items = list(value)
    return items[-1] if items else None


def safe(value: Any) -> Markup:
    return Markup(str(value))


BUILTIN_FILTERS: dict[str, Callable[..., Any]] = {
    "capitalize": lambda value: str(value).capitalize(),
    "default": default,
    "escape": escape,
    "first": first,
    "join": join,
    "last": last,
    "length": length,
    "lower": lambda value: str(value).lower(),
    "replace": replace,
    "safe": safe,
    "title": lambda value: str(value).title(),
    "trim": lambda value: str(value).strip(),
    "truncate": truncate,
    "upper": lambda value: str(value).upper(),
}
