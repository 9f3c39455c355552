"""How the CLI lays out its tables: ids and figures whole at any width.

Rich fits a table to the console by squeezing every column, which on an
80-column terminal (or in a pipe, where Rich assumes 80) cut ids down to
"3e7a9d…": useless to paste into the next command. Columns made with
`add_whole_column` keep the full width of their widest cell (ids, numbers,
statuses); free text (names, summaries, models) gives way instead.

Output that is not a terminal (a file, `grep`, `less`) is laid out for
PIPE_WIDTH columns unless COLUMNS says otherwise, so rows stay on one line.

A table that cannot fit the terminal even so (`print_table`) is printed one
record per row when it is short, or without its rightmost columns, named in
a note, when it is long: Rich would otherwise crop them without a word.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Iterable

from rich.console import Console
from rich.segment import Segment
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from dgm.safe_text import terminal_safe

PIPE_WIDTH = 160
# Below this many cells a free-text column (a name, a model, a reason) wraps into an unreadable strip.
FREE_TEXT_MIN = 10
# A table this short that is too wide is printed as records; a longer one drops columns (and says which).
RECORDS_UP_TO = 12


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    try:
        piped = not stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        piped = True
    width = PIPE_WIDTH if piped and not os.environ.get("COLUMNS") else None
    return SafeConsole(stderr=stderr, width=width)


class SafeConsole(Console):
    """A Console whose text cannot drive the terminal.

    Much of what dgm prints was written by agents (reasons, errors, file
    names, proposals): an escape sequence in it could recolour or hide lines,
    retitle the window or write the clipboard. Every text segment is passed
    through `terminal_safe` as it is rendered; Rich's own styles and cursor
    controls (separate segments) are untouched. (`_render_buffer` is where
    Rich turns segments into the bytes written; were a later Rich to stop
    calling it, this would lapse silently, which tests/test_browse_cli.py
    would catch.)
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            Segment(terminal_safe(seg.text), seg.style, seg.control) if not seg.control else seg for seg in buffer)


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


def table_of(title, columns: Iterable[str], rows: list[list], *, free: Iterable[str] = (),
             right: Iterable[str] = ()) -> Table:
    """A table of `rows` under `columns`: the `free` ones (names, models,
    reasons) wrap, every other column stays whole; `right` ones are right-aligned."""
    table = Table(title=title)
    free, right = set(free), set(right)
    for i, col in enumerate(columns):
        justify = "right" if col in right else "left"
        if col in free:
            table.add_column(col, justify=justify)
        else:
            add_whole_column(table, col, [row[i] for row in rows], justify=justify)
    for row in rows:
        table.add_row(*row)
    return table


def _width_needed(columns) -> int:
    # Whole columns need their full width; free text needs a little to stay legible.
    return sum(FREE_TEXT_MIN if c.min_width is None else c.min_width for c in columns) + 3 * len(columns) + 1


def print_table(console: Console, table: Table) -> None:
    """Print `table` so that nothing is lost without a word on a narrow console:
    a few rows become one block per row ("header  value" lines); a long
    table keeps the columns that fit and names the ones it leaves out."""
    # Only declared widths are counted: asking Rich to measure the table costs
    # half as much as printing it (12 s for 20,000 rows), and it reports what it
    # can squeeze a table into, which is what hides columns in the first place.
    if _width_needed(table.columns) <= console.width:
        console.print(table)
        return
    if table.row_count > RECORDS_UP_TO:
        kept = len(table.columns)
        while kept > 1 and _width_needed(table.columns[:kept]) > console.width:
            kept -= 1
        narrow = copy.copy(table)
        narrow.columns = table.columns[:kept]
        console.print(narrow)
        hidden = ", ".join(str(c.header) for c in table.columns[kept:])
        console.print(Text(f"({hidden} left out at {console.width} columns: widen the terminal, "
                           "or pipe the output, which is laid out wide)", style="dim"))
        return
    if table.title:
        console.print(table.title)
    headers = [Text.from_markup(c.header) if isinstance(c.header, str) else c.header for c in table.columns]
    columns = [list(c.cells) for c in table.columns]
    for row in range(table.row_count):
        console.print(Rule(characters="─", style="dim"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for header, cells in zip(headers, columns):
            grid.add_row(header, cells[row] if row < len(cells) else "")
        console.print(grid)


def model_label(model: str) -> str:
    """A model's name as results show it: scripted stand-ins say so."""
    from dgm.llm.model_names import is_scripted

    # Plain text: whoever prints it through Rich markup escapes it there.
    return f"{model} [scripted]" if is_scripted(model) else model


def money(usd: float | None) -> str:
    """Dollars as every cost figure of the estimate and the spend views shows them; None: the
    model has no known price (said as such, never as $0)."""
    if usd is None:
        return "unpriced"
    return f"${usd:,.2f}" if abs(usd) >= 10 else f"${usd:.4f}"


def usd_text(cost: float | None, unpriced_calls: int = 0, *, dollar: bool = False) -> str:
    """A cost as every view shows it: `0.1234`; `unpriced` when its calls had no known
    price (their $0 is no price, and must not read as free); `0.1234 + unpriced` when
    some had none. `dollar`: with a leading $ (in a sentence rather than a `$` column)."""
    figure = f"{'$' if dollar else ''}{cost or 0.0:.4f}"
    if not unpriced_calls:
        return figure
    return f"{figure} + unpriced" if cost else "unpriced"
