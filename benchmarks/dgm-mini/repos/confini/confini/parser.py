"""Build a Config from classified lines."""

from __future__ import annotations

from confini.config import DEFAULT, Config, Section
from confini.errors import DuplicateKeyError, DuplicateSectionError, ParseError
from confini.lexer import Kind, tokenize


def parse(text: str, *, strict: bool = True) -> Config:
    """Parse configuration text into a Config.

    In strict mode (the default) a repeated section or key is an error; otherwise
    repeated sections are merged and the last value of a key wins.
    """
    config = Config()
    section: Section | None = None
    key: str | None = None  # the entry that an indented line would continue
    seen_sections: set[str] = set()
    seen_keys: set[tuple[str, str]] = set()

    for line in tokenize(text):
        if line.kind is Kind.BLANK:
            key = None
        elif line.kind is Kind.COMMENT:
            # Comments may sit between the lines of a multi-line value.
            continue
        elif line.kind is Kind.SECTION:
            if line.name in seen_sections and strict:
                raise DuplicateSectionError(f"section [{line.name}] already defined", line.lineno, line.text)
            seen_sections.add(line.name)
            section = config.defaults if line.name == DEFAULT else config.add_section(line.name, exist_ok=True)
            key = None
        elif line.kind is Kind.ENTRY:
            if section is None:
                raise ParseError("key outside of any section", line.lineno, line.text)
            key = line.name.lower()
            if (section.name, key) in seen_keys and strict:
                raise DuplicateKeyError(
                    f"key {key!r} already defined in section [{section.name}]", line.lineno, line.text
                )
            seen_keys.add((section.name, key))
            section.set(key, line.value)
        else:  # continuation
            if section is None or key is None:
                raise ParseError("indented line does not continue a value", line.lineno, line.text)
            previous = section.raw(key)
            section.set(key, f"{previous}\n{line.value}" if previous else line.value)
    return config
