"""A strict, small INI configuration parser."""

from __future__ import annotations

import os
from typing import Iterable, Union

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


PathLike = Union[str, os.PathLike]


def load(paths: PathLike | Iterable[PathLike], *, strict: bool = True, encoding: str = "utf-8") -> Config:
    """Parse a configuration file, or several layered in order.

    With several files, later ones override earlier ones key by key (see
    `parse(into=...)`), e.g. packaged defaults, then site settings, then a
    local override. Parse errors name the file they come from.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    config = Config()
    for path in paths:
        with open(path, encoding=encoding) as fh:
            parse(fh.read(), strict=strict, source=os.fspath(path), into=config)
    return config


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
