"""A strict, small INI configuration parser."""

from __future__ import annotations

import os

from confini.config import DEFAULT, Config, Section
from confini.errors import (
    ConfigError,
    DuplicateKeyError,
    DuplicateSectionError,
    InterpolationError,
    MissingKeyError,
    MissingSectionError,
    ParseError,
)
from confini.parser import parse
from confini.writer import dumps


def loads(text: str, *, strict: bool = True) -> Config:
    """Parse configuration text."""
    return parse(text, strict=strict)


def load(path: str | os.PathLike[str], *, strict: bool = True, encoding: str = "utf-8") -> Config:
    """Parse a configuration file."""
    with open(path, encoding=encoding) as fh:
        return parse(fh.read(), strict=strict)


__all__ = [
    "DEFAULT",
    "Config",
    "ConfigError",
    "DuplicateKeyError",
    "DuplicateSectionError",
    "InterpolationError",
    "MissingKeyError",
    "MissingSectionError",
    "ParseError",
    "Section",
    "dumps",
    "load",
    "loads",
    "parse",
]

__version__ = "1.2.0"
