"""Account names: colon-separated paths such as ``assets:bank:checking``."""

from __future__ import annotations

SEPARATOR = ":"


def validate_account(name: str) -> str:
    """`name` if every part is non-empty and has no surrounding whitespace."""
    parts = name.split(SEPARATOR)
    if not name or any(not part or part != part.strip() for part in parts):
        raise ValueError(f"invalid account name: {name!r}")
    return name


def depth(name: str) -> int:
    """``assets`` is 1, ``assets:bank`` is 2."""
    return name.count(SEPARATOR) + 1


def parents(name: str) -> list[str]:
    """The ancestors of `name`, outermost first, excluding `name` itself.

    >>> parents("assets:bank:checking")
    ['assets', 'assets:bank']
    """
    parts = name.split(SEPARATOR)
    return [SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]


def truncate(name: str, max_depth: int) -> str:
    """`name` cut to at most `max_depth` parts."""
    if max_depth < 1:
        raise ValueError("depth must be at least 1")
    return SEPARATOR.join(name.split(SEPARATOR)[:max_depth])
