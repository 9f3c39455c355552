"""Shorten text to a width, marking where it was cut."""

from __future__ import annotations

PLACEHOLDER = "\u2026"  # a single-column ellipsis
_WHERE = ("end", "start", "middle")


def truncate(text: str, width: int, placeholder: str = PLACEHOLDER, *, where: str = "end") -> str:
    """`text` if it fits in `width`, else a shortened copy containing `placeholder`.

    `where` says which part is dropped: the ``"end"`` (default), the
    ``"start"`` (useful for paths) or the ``"middle"``.
    """
    if where not in _WHERE:
        raise ValueError(f"where must be one of {', '.join(_WHERE)}, not {where!r}")
    if width < len(placeholder):
        raise ValueError(f"width {width} cannot hold the placeholder {placeholder!r}")
    if len(text) <= width:
        return text
    keep = width - len(placeholder)
    if where == "end":
        return text[:keep] + placeholder
    if where == "start":
        return placeholder + (text[-keep:] if keep else "")
    # The head gets the extra character: the start of a string is usually
    # what identifies it.
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + placeholder + (text[-tail:] if tail else "")
