"""How the CLI lays out its tables: ids and figures whole at any width.

Rich fits a table to the console by squeezing every column, which on an
80-column terminal (or in a pipe, where Rich assumes 80) cut ids down to
"3e7a9d…": useless to paste into the next command. Columns made with
`add_whole_column` keep the full width of their widest cell (ids, numbers,
statuses); free text (names, summaries, models) gives way instead.

Output that is not a terminal (a file, `grep`, `less`) is laid out for
PIPE_WIDTH columns unless COLUMNS says otherwise, so rows stay on one line.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 160


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    try:
        piped = not stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        piped = True
    width = PIPE_WIDTH if piped and not os.environ.get("COLUMNS") else None
    return Console(stderr=stderr, width=width)


def _cell_width(value) -> int:
    if isinstance(value, Text):
        return value.cell_len
    return Text.from_markup(str(value)).cell_len


def add_whole_column(table: Table, header: str, cells: Iterable, **kwargs) -> None:
    """A column whose cells are never cut or wrapped: at least as wide as the
    widest cell and the header's longest word (the header may wrap)."""
    width = max((_cell_width(c) for c in cells), default=0)
    word = max((len(w) for w in header.split()), default=0)
    table.add_column(header, min_width=max(width, word, 1), **kwargs)
