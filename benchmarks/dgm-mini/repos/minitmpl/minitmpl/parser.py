"""Build the node tree from tokens."""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator, Mapping

from minitmpl.errors import TemplateSyntaxError
from minitmpl.expr import parse_expression
from minitmpl.lexer import Kind, Token
from minitmpl.nodes import Condition, For, If, Node, Output, Text

_FOR = re.compile(r"for\s+(?P<target>[A-Za-z_]\w*)\s+in\s+(?P<iterable>.+)", re.DOTALL)
_CONDITION = re.compile(r"(?P<not>not\s+)?(?P<expr>.+)", re.DOTALL)


class Parser:
    def __init__(self, tokens: Iterator[Token], filters: Mapping[str, Callable[..., Any]]) -> None:
        self.tokens = list(tokens)
        self.index = 0
        self.filters = filters

    def parse(self) -> list[Node]:
        nodes, end = self.body(())
        assert end is None
        return nodes

    def body(self, end_tags: tuple[str, ...]) -> tuple[list[Node], Token | None]:
        """Nodes up to one of `end_tags` (returned, consumed) or the end of input."""
        nodes: list[Node] = []
        while self.index < len(self.tokens):
            token = self.tokens[self.index]
            self.index += 1
            if token.kind is Kind.TEXT:
                nodes.append(Text(token.value))
            elif token.kind is Kind.VAR:
                nodes.append(Output(parse_expression(token.value, token.lineno, self.filters)))
            else:
                keyword = token.value.split(None, 1)[0] if token.value else ""
                if keyword in end_tags:
                    return nodes, token
                if keyword == "if":
                    nodes.append(self.if_block(token))
                elif keyword == "for":
                    nodes.append(self.for_block(token))
                elif keyword in ("elif", "else", "endif", "endfor"):
                    raise TemplateSyntaxError(f"unexpected '{keyword}'", token.lineno)
                else:
                    raise TemplateSyntaxError(f"unknown tag {keyword!r}", token.lineno)
        return nodes, None

    def condition(self, text: str, token: Token) -> Condition:
        match = _CONDITION.fullmatch(text.strip())
        if match is None:
            raise TemplateSyntaxError("missing condition", token.lineno)
        expression = parse_expression(match["expr"], token.lineno, self.filters)
        return Condition(expression, negated=bool(match["not"]))

    def if_block(self, start: Token) -> If:
        branches = []
        clause = start
        while True:
            rest = clause.value.split(None, 1)[1] if len(clause.value.split(None, 1)) > 1 else ""
            body, end = self.body(("elif", "else", "endif"))
            branches.append((self.condition(rest, clause), body))
            if end is None:
                raise TemplateSyntaxError(f"'if' opened on line {start.lineno} is never closed", start.lineno)
            if end.value.split()[0] != "elif":
                break
            clause = end
        otherwise: list[Node] = []
        if end.value.split()[0] == "else":
            otherwise, end = self.body(("endif",))
            if end is None:
                raise TemplateSyntaxError(f"'if' opened on line {start.lineno} is never closed", start.lineno)
        return If(branches, otherwise)

    def for_block(self, start: Token) -> For:
        match = _FOR.fullmatch(start.value)
        if match is None:
            raise TemplateSyntaxError("expected 'for <name> in <expression>'", start.lineno)
        iterable = parse_expression(match["iterable"], start.lineno, self.filters)
        body, end = self.body(("endfor",))
        if end is None:
            raise TemplateSyntaxError(f"'for' opened on line {start.lineno} is never closed", start.lineno)
        return For(match["target"], iterable, body)


def parse(tokens: Iterator[Token], filters: Mapping[str, Callable[..., Any]]) -> list[Node]:
    return Parser(tokens, filters).parse()
