"""Exceptions raised by confini. All derive from ConfigError."""

from __future__ import annotations


class ConfigError(Exception):
    """Base class of every confini error."""


class ParseError(ConfigError):
    """The text is not valid configuration syntax."""

    def __init__(self, message: str, lineno: int, line: str | None = None, source: str | None = None) -> None:
        self.message = message
        self.lineno = lineno
        self.line = line
        self.source = source
        """The file the text came from, as given to `load`; None for `loads`."""
        where = f"{source}, line {lineno}" if source else f"line {lineno}"
        super().__init__(f"{where}: {message}")


class DuplicateSectionError(ParseError):
    """A section header appears twice (strict mode)."""


class DuplicateKeyError(ParseError):
    """A key appears twice in one section (strict mode)."""


class MissingSectionError(ConfigError, KeyError):
    """No section of that name."""

    def __init__(self, section: str) -> None:
        self.section = section
        super().__init__(section)

    def __str__(self) -> str:
        # KeyError's own __str__ would show the repr of the argument.
        return f"no section [{self.section}]"


class MissingKeyError(ConfigError, KeyError):
    """No key of that name in the section (nor in [DEFAULT])."""

    def __init__(self, section: str, key: str) -> None:
        self.section = section
        self.key = key
        super().__init__(section, key)

    def __str__(self) -> str:
        return f"no key {self.key!r} in section [{self.section}]"


class InterpolationError(ConfigError):
    """A ${...} reference cannot be expanded."""
