"""Turn a syntax tree back into source text with as few parentheses as possible."""

from __future__ import annotations

from minicalc.nodes import Assign, Binary, Call, FunctionDef, Name, Number, Statement, Unary
from minicalc.parser import BINARY, UNARY_PRECEDENCE

_ATOM = 100  # names, numbers and calls never need parentheses


def _precedence(node: Statement) -> int:
    if isinstance(node, Binary):
        return BINARY[node.op][0]
    if isinstance(node, Unary):
        return UNARY_PRECEDENCE
    return _ATOM


def _wrap(node: Statement, parens: bool) -> str:
    text = to_source(node)
    return f"({text})" if parens else text


def to_source(node: Statement) -> str:
    """Source text that parses back into `node`."""
    match node:
        case Number(value=value):
            return repr(value)
        case Name(id=name):
            return name
        case Call(func=func, args=args):
            return f"{func}({', '.join(to_source(arg) for arg in args)})"
        case Unary(op=op, operand=operand):
            return op + _wrap(operand, _precedence(operand) < UNARY_PRECEDENCE)
        case Binary(op=op, left=left, right=right):
            precedence = BINARY[op][0]
            left_text = _wrap(left, _precedence(left) < precedence)
            right_text = _wrap(right, _precedence(right) < precedence)
            return f"{left_text} {op} {right_text}"
        case Assign(name=name, value=value):
            return f"{name} = {to_source(value)}"
        case FunctionDef(name=name, params=params, body=body):
            return f"{name}({', '.join(params)}) = {to_source(body)}"
    raise TypeError(f"not a minicalc node: {node!r}")
