"""Convert identifiers between naming conventions.

Words are found at underscores, hyphens, spaces, lower-to-upper case changes
and digit runs, so every converter accepts input in any of the conventions.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def split_words(text: str) -> list[str]:
    """The words of an identifier, in order, with their original case.

    >>> split_words("parseJsonValue")
    ['parse', 'Json', 'Value']
    >>> split_words("max-retry_count 3")
    ['max', 'retry', 'count', '3']
    """
    return _WORD.findall(text)


def snake_case(text: str) -> str:
    """``parseJsonValue`` -> ``parse_json_value``."""
    return "_".join(word.lower() for word in split_words(text))


def kebab_case(text: str) -> str:
    """``parseJsonValue`` -> ``parse-json-value``."""
    return "-".join(word.lower() for word in split_words(text))


def pascal_case(text: str) -> str:
    """``parse_json_value`` -> ``ParseJsonValue``."""
    return "".join(word.capitalize() for word in split_words(text))


def camel_case(text: str) -> str:
    """``parse_json_value`` -> ``parseJsonValue``."""
    words = split_words(text)
    if not words:
        return ""
    return words[0].lower() + "".join(word.capitalize() for word in words[1:])
