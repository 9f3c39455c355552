"""`python -m minicalc`: an interactive calculator."""

from __future__ import annotations

import sys

from minicalc.errors import CalcError
from minicalc.session import Session


def format_value(value: int | float) -> str:
    # 12 significant digits hide binary noise (0.1 + 0.2) without hiding
    # anything a calculator user would care about.
    return str(value) if isinstance(value, int) else f"{value:.12g}"


def main() -> int:
    session = Session()
    interactive = sys.stdin.isatty()
    status = 0
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            return status
        try:
            value = session.run(line)
        except CalcError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        if value is not None:
            print(format_value(value))


if __name__ == "__main__":
    sys.exit(main())
