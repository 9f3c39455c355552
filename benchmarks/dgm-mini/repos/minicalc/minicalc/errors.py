"""Errors. Each carries the position (0-based column) it refers to, if known."""

from __future__ import annotations


class CalcError(Exception):
    """Base class of every error minicalc reports to its user."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        self.message = message
        self.pos = pos
        super().__init__(message if pos is None else f"{message} (at position {pos})")


class CalcSyntaxError(CalcError):
    """The input is not a valid expression or statement."""


class UnknownNameError(CalcError):
    """A variable or function that is not defined."""


class ArityError(CalcError):
    """A function called with the wrong number of arguments."""


class CalcZeroDivisionError(CalcError):
    """Division or remainder by zero."""
