"""Aligned plain-text tables for terminal output."""

from __future__ import annotations

from typing import Iterable, Sequence

from textkit.truncate import truncate
from textkit.width import display_width

_ALIGN = {"l": str.ljust, "r": str.rjust, "c": str.center}


def _pad(cell: str, width: int, align: str) -> str:
    """`cell` padded to `width` display columns.

    str.ljust and friends count code points; shrinking the target by the
    cell's extra columns makes them pad to display width instead.
    """
    extra = display_width(cell) - len(cell)
    return _ALIGN[align](cell, width - extra)


def format_table(
    rows: Iterable[Sequence[object]],
    headers: Sequence[object] | None = None,
    *,
    align: str | None = None,
    max_width: int | None = None,
    sep: str = "  ",
) -> str:
    """Render `rows` as a table with one line per row.

    `align` holds one of ``l``, ``r`` or ``c`` per column (default: all left).
    Cells wider than `max_width` columns are truncated. Widths are display
    columns, so wide (CJK) characters and combining accents line up. Cells
    are converted with ``str()``; ``None`` renders as an empty cell. Short
    rows are padded with empty cells.
    """
    table = [["" if cell is None else str(cell) for cell in row] for row in rows]
    header = [str(h) for h in headers] if headers is not None else None
    ncols = max([len(r) for r in table] + [len(header) if header else 0])
    for row in table:
        row.extend([""] * (ncols - len(row)))
    if header is not None:
        header.extend([""] * (ncols - len(header)))
    if max_width is not None:
        table = [[truncate(cell, max_width) for cell in row] for row in table]

    align = (align or "").ljust(ncols, "l")
    bad = set(align) - set(_ALIGN)
    if bad:
        raise ValueError(f"unknown alignment {''.join(sorted(bad))!r}; use l, r or c")

    widths = [0] * ncols
    for row in table + ([header] if header else []):
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))

    def render(row: list[str], row_align: str) -> str:
        cells = [_pad(cell, w, a) for cell, w, a in zip(row, widths, row_align)]
        return sep.join(cells).rstrip()

    lines = []
    if header is not None:
        # Headers follow the column alignment so they sit over numbers.
        lines.append(render(header, align))
        lines.append(sep.join("-" * w for w in widths))
    lines.extend(render(row, align) for row in table)
    return "\n".join(lines)
