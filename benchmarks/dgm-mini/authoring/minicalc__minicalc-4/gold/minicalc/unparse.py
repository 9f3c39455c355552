"""Turn a syntax tree back into source text with as few parentheses as possible.

All decisions come from the parser's tables (BINARY, UNARY_PRECEDENCE), so
the output parses back into the same tree whatever those tables say.
"""

from __future__ import annotations

from minicalc.nodes import Assign, Binary, Call, Name, Node, Number, Statement, Unary
from minicalc.parser import BINARY, UNARY_PRECEDENCE

# How far a piece of source text reaches to its right: None if it is closed
# (ends in a name, number, call or parenthesis), else the lowest precedence of a
# binary operator that a trailing prefix operator would take into its operand
# if that operator were written right after the text.
_Open = int | None


def _render(node: Node) -> tuple[str, _Open]:
    match node:
        case Number(value=value):
            return repr(value), None
        case Name(id=name):
            return name, None
        case Call(func=func, args=args):
            return f"{func}({', '.join(to_source(arg) for arg in args)})", None
        case Unary(op=op, operand=operand):
            text, reach = _render(operand)
            # The operand is parsed at UNARY_PRECEDENCE: anything binding looser
            # would end it early.
            if isinstance(operand, Binary) and BINARY[operand.op][0] < UNARY_PRECEDENCE:
                return f"{op}({text})", UNARY_PRECEDENCE
            return op + text, UNARY_PRECEDENCE if reach is None else min(reach, UNARY_PRECEDENCE)
        case Binary(op=op, left=left, right=right):
            precedence, assoc = BINARY[op]
            left_text = _operand(left, precedence, assoc, "left")[0]
            right_text, reach = _operand(right, precedence, assoc, "right")
            return f"{left_text} {op} {right_text}", reach
    raise TypeError(f"not a minicalc node: {node!r}")


def _operand(node: Node, precedence: int, assoc: str, side: str) -> tuple[str, _Open]:
    """An operand of a binary operator of `precedence` and `assoc`, on `side`."""
    text, reach = _render(node)
    if isinstance(node, Binary):
        inner = BINARY[node.op][0]
        # At equal precedence only the side the operator groups towards can go
        # bare: a - b - c is (a - b) - c, so a - (b - c) keeps its parentheses,
        # and for a right-associative ^ it is the other way round.
        parens = inner < precedence or (inner == precedence and side != assoc)
    else:
        parens = False
    if side == "left" and reach is not None and precedence >= reach:
        # "-a ^ b" would read as -(a ^ b) when "-" binds looser than "^".
        parens = True
    return (f"({text})", None) if parens else (text, reach)


def to_source(node: Statement) -> str:
    """Source text that parses back into `node` (the same tree, not just the same value)."""
    if isinstance(node, Assign):
        return f"{node.name} = {to_source(node.value)}"
    return _render(node)[0]
