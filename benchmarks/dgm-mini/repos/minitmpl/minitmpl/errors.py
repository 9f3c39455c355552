"""Template errors."""

from __future__ import annotations


class TemplateError(Exception):
    """Base class of every minitmpl error."""


class TemplateSyntaxError(TemplateError):
    """The template source is malformed."""

    def __init__(self, message: str, lineno: int) -> None:
        self.message = message
        self.lineno = lineno
        super().__init__(f"line {lineno}: {message}")


class UndefinedError(TemplateError):
    """A name or attribute is undefined (strict mode only)."""
