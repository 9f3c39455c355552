"""Shorten text to a width, marking where it was cut."""

from __future__ import annotations

from textkit.width import char_width, display_width

PLACEHOLDER = "\u2026"  # a single-column ellipsis
_WHERE = ("end", "start", "middle")


def _clusters(text: str) -> list[str]:
    """`text` split into characters with their zero-width followers attached,
    so a cut never separates a letter from its combining accent."""
    clusters: list[str] = []
    for ch in text:
        if clusters and char_width(ch) == 0:
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters


def _take(clusters: list[str], budget: int) -> tuple[list[str], int]:
    """The longest prefix of `clusters` that fits in `budget` columns, and its width."""
    taken: list[str] = []
    used = 0
    for cluster in clusters:
        w = display_width(cluster)
        if used + w > budget:
            break
        taken.append(cluster)
        used += w
    return taken, used


def truncate(text: str, width: int, placeholder: str = PLACEHOLDER, *, where: str = "end") -> str:
    """`text` if it fits in `width` columns, else a shortened copy containing `placeholder`.

    Widths are display columns (see `textkit.width`), so wide characters count
    twice and the result may be a column short of `width` when a wide
    character does not fit. `where` says which part is dropped: the ``"end"``
    (default), the ``"start"`` (useful for paths) or the ``"middle"``.
    """
    if where not in _WHERE:
        raise ValueError(f"where must be one of {', '.join(_WHERE)}, not {where!r}")
    if width < display_width(placeholder):
        raise ValueError(f"width {width} cannot hold the placeholder {placeholder!r}")
    if display_width(text) <= width:
        return text
    budget = width - display_width(placeholder)
    clusters = _clusters(text)
    if where == "end":
        head, _ = _take(clusters, budget)
        return "".join(head) + placeholder
    if where == "start":
        tail, _ = _take(clusters[::-1], budget)
        return placeholder + "".join(reversed(tail))
    # The head gets the extra column: the start of a string is usually what
    # identifies it. Whatever the head cannot use goes to the tail.
    head, used = _take(clusters, (budget + 1) // 2)
    tail, _ = _take(clusters[len(head):][::-1], budget - used)
    return "".join(head) + placeholder + "".join(reversed(tail))
