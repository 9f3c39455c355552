"""Evaluate a syntax tree."""

from __future__ import annotations

import operator
from typing import Mapping

from minicalc.errors import CalcError, CalcZeroDivisionError, UnknownNameError
from minicalc.functions import Function, Value
from minicalc.nodes import Binary, Call, Name, Node, Number, Unary

_BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "^": operator.pow,
}


def evaluate_tree(node: Node, variables: Mapping[str, Value], functions: Mapping[str, Function]) -> Value:
    """The value of `node`, with names looked up in `variables` and `functions`."""

    def ev(node: Node) -> Value:
        match node:
            case Number(value=value):
                return value
            case Name(id=name):
                try:
                    return variables[name]
                except KeyError:
                    raise UnknownNameError(f"unknown variable {name!r}", node.pos) from None
            case Unary(op="-", operand=operand):
                return -ev(operand)
            case Unary(op="+", operand=operand):
                return +ev(operand)
            case Binary(op=op, left=left, right=right):
                return _binary(op, ev(left), ev(right), node.pos)
            case Call(func=name, args=args):
                function = functions.get(name)
                if function is None:
                    raise UnknownNameError(f"unknown function {name!r}", node.pos)
                return function([ev(arg) for arg in args], node.pos)
        raise TypeError(f"not a minicalc node: {node!r}")

    return ev(node)


def _binary(op: str, left: Value, right: Value, pos: int) -> Value:
    try:
        result = _BINARY[op](left, right)
    except ZeroDivisionError:
        raise CalcZeroDivisionError("division by zero", pos) from None
    except OverflowError:
        raise CalcError("result too large", pos) from None
    # (-8) ^ 0.5 is complex in Python; the calculator only deals in reals.
    if isinstance(result, complex):
        raise CalcError("result is not a real number", pos)
    return result
