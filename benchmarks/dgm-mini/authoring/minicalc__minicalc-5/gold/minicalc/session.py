"""Sessions: variables and the last result carried across lines."""

from __future__ import annotations

from collections import ChainMap

from minicalc.errors import CalcError
from minicalc.evaluator import evaluate_tree
from minicalc.functions import BUILTINS, CONSTANTS, Function, Value
from minicalc.nodes import Assign, FunctionDef
from minicalc.parser import parse, parse_statement

LAST_RESULT = "_"


class Session:
    """Runs statements one at a time, remembering variables and functions.

    Every expression's or assignment's value is also stored in ``_``.
    """

    def __init__(self) -> None:
        self.variables: dict[str, Value] = dict(CONSTANTS)
        self.functions: dict[str, Function] = dict(BUILTINS)
        self._running: list[str] = []  # user functions being evaluated, innermost last

    def run(self, source: str) -> Value | None:
        """Run one statement; return its value (None for blank input and definitions)."""
        if not source.strip():
            return None
        statement = parse_statement(source)
        if isinstance(statement, FunctionDef):
            self.define(statement)
            return None
        if isinstance(statement, Assign):
            if statement.name == LAST_RESULT:
                raise CalcError(f"cannot assign to {LAST_RESULT}", statement.pos)
            value = evaluate_tree(statement.value, self.variables, self.functions)
            self.variables[statement.name] = value
        else:
            value = evaluate_tree(statement, self.variables, self.functions)
        self.variables[LAST_RESULT] = value
        return value

    def define(self, definition: FunctionDef) -> None:
        """Add or replace a user function."""
        name = definition.name
        if name in BUILTINS:
            raise CalcError(f"cannot redefine built-in function {name}()", definition.pos)

        def call(*args: Value) -> Value:
            # The language has no conditionals, so a function reached again
            # while it runs would recurse forever.
            if name in self._running:
                chain = " -> ".join(f"{n}()" for n in [*self._running, name])
                raise CalcError(f"recursive call: {chain}", definition.pos)
            self._running.append(name)
            try:
                # Parameters shadow session variables; other names are looked up
                # when the function runs, so it sees later assignments.
                scope = ChainMap(dict(zip(definition.params, args)), self.variables)
                return evaluate_tree(definition.body, scope, self.functions)
            finally:
                self._running.pop()

        arity = len(definition.params)
        self.functions[name] = Function(name, call, arity, arity)


def evaluate(source: str, variables: dict[str, Value] | None = None) -> Value:
    """The value of one expression, with the constants and optional `variables`."""
    return evaluate_tree(parse(source), {**CONSTANTS, **(variables or {})}, BUILTINS)
