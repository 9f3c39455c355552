"""Sessions: variables and the last result carried across lines."""

from __future__ import annotations

from minicalc.errors import CalcError
from minicalc.evaluator import evaluate_tree
from minicalc.functions import BUILTINS, CONSTANTS, Function, Value
from minicalc.nodes import Assign
from minicalc.parser import parse, parse_statement

LAST_RESULT = "_"


class Session:
    """Runs statements one at a time, remembering variables.

    Every statement's value is also stored in ``_``.
    """

    def __init__(self) -> None:
        self.variables: dict[str, Value] = dict(CONSTANTS)
        self.functions: dict[str, Function] = dict(BUILTINS)

    def run(self, source: str) -> Value | None:
        """Run one statement; return its value (None for blank input)."""
        if not source.strip():
            return None
        statement = parse_statement(source)
        if isinstance(statement, Assign):
            if statement.name == LAST_RESULT:
                raise CalcError(f"cannot assign to {LAST_RESULT}", statement.pos)
            value = evaluate_tree(statement.value, self.variables, self.functions)
            self.variables[statement.name] = value
        else:
            value = evaluate_tree(statement, self.variables, self.functions)
        self.variables[LAST_RESULT] = value
        return value


def evaluate(source: str, variables: dict[str, Value] | None = None) -> Value:
    """The value of one expression, with the constants and optional `variables`."""
    return evaluate_tree(parse(source), {**CONSTANTS, **(variables or {})}, BUILTINS)
