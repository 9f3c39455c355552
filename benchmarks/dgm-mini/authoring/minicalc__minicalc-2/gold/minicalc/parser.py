"""Precedence-climbing parser.

The precedence table is the single source of truth about how operators group;
`unparse` reads it too, so the two cannot disagree.
"""

from __future__ import annotations

from minicalc.errors import CalcSyntaxError
from minicalc.nodes import Assign, Binary, Call, Name, Node, Number, Statement, Unary
from minicalc.tokens import Kind, Token, tokenize

# operator -> (precedence, associativity); higher binds tighter.
BINARY: dict[str, tuple[int, str]] = {
    "+": (10, "left"),
    "-": (10, "left"),
    "*": (20, "left"),
    "/": (20, "left"),
    "//": (20, "left"),
    "%": (20, "left"),
    "^": (30, "left"),
}
UNARY = ("-", "+")
# Between the products and "^": -2^2 is -(2^2), as in maths and Python, while
# -2*3 is still (-2)*3. The operand of "^" may itself be negated (2^-1).
UNARY_PRECEDENCE = 25


def _number(text: str) -> int | float:
    # Integers stay exact: 2^64 must not become a float.
    return float(text) if "." in text else int(text)


class Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def unexpected(self, token: Token) -> CalcSyntaxError:
        if token.kind is Kind.END:
            return CalcSyntaxError("unexpected end of input", token.pos)
        return CalcSyntaxError(f"unexpected {token.text!r}", token.pos)

    def expect_end(self) -> None:
        if self.peek().kind is not Kind.END:
            raise self.unexpected(self.peek())

    # -- grammar ----------------------------------------------------------------

    def expression(self, min_precedence: int = 0) -> Node:
        left = self.prefix()
        while True:
            token = self.peek()
            if token.kind is not Kind.OP or token.text not in BINARY:
                return left
            precedence, assoc = BINARY[token.text]
            if precedence < min_precedence:
                return left
            self.advance()
            # A left-associative operator must not take an operator of its own
            # level into its right operand: a - b - c is (a - b) - c.
            right = self.expression(precedence + 1 if assoc == "left" else precedence)
            left = Binary(token.text, left, right, pos=token.pos)

    def prefix(self) -> Node:
        token = self.advance()
        if token.kind is Kind.NUMBER:
            return Number(_number(token.text), pos=token.pos)
        if token.kind is Kind.NAME:
            if self.peek().kind is Kind.LPAREN:
                return self.call(token)
            return Name(token.text, pos=token.pos)
        if token.kind is Kind.OP and token.text in UNARY:
            return Unary(token.text, self.expression(UNARY_PRECEDENCE), pos=token.pos)
        if token.kind is Kind.LPAREN:
            inner = self.expression()
            if self.peek().kind is not Kind.RPAREN:
                raise CalcSyntaxError(f"'(' at position {token.pos} is never closed", self.peek().pos)
            self.advance()
            return inner
        raise self.unexpected(token)

    def call(self, name: Token) -> Call:
        self.advance()  # "("
        args: list[Node] = []
        if self.peek().kind is not Kind.RPAREN:
            while True:
                args.append(self.expression())
                if self.peek().kind is not Kind.COMMA:
                    break
                self.advance()
        if self.peek().kind is not Kind.RPAREN:
            raise self.unexpected(self.peek())
        self.advance()
        return Call(name.text, tuple(args), pos=name.pos)


def parse(source: str) -> Node:
    """The tree of an expression."""
    parser = Parser(source)
    node = parser.expression()
    parser.expect_end()
    return node


def parse_statement(source: str) -> Statement:
    """An expression, or an assignment ``name = expression``."""
    parser = Parser(source)
    first, second = parser.peek(), parser.peek(1)
    if first.kind is Kind.NAME and second.kind is Kind.OP and second.text == "=":
        parser.advance()
        parser.advance()
        statement: Statement = Assign(first.text, parser.expression(), pos=first.pos)
    else:
        statement = parser.expression()
    parser.expect_end()
    return statement
