"""Write a Config back out as text."""

from __future__ import annotations

from confini.config import DEFAULT, Config, Section
from confini.lexer import COMMENT_PREFIXES

CONTINUATION_INDENT = "    "


def _entry(section: str, key: str, value: str) -> list[str]:
    first, *rest = value.split("\n")
    for line in rest:
        # Either would read back as something else: a blank line ends the
        # value, an indented comment is skipped.
        if not line.strip() or line.strip().startswith(COMMENT_PREFIXES):
            raise ValueError(
                f"[{section}] {key}: line {line!r} of a multi-line value cannot be written as INI"
            )
    lines = [f"{key} = {first}" if first else f"{key} ="]
    lines.extend(CONTINUATION_INDENT + line for line in rest)
    return lines


def _write_section(name: str, section: Section) -> list[str]:
    # Raw values, and only the section's own keys: interpolating or copying
    # [DEFAULT] into every section would not read back as the same config.
    lines = [f"[{name}]"]
    for key in section.own_keys():
        lines.extend(_entry(name, key, section.raw(key)))
    return lines


def dumps(config: Config) -> str:
    """Configuration text that `confini.loads` reads back into an equal Config.

    Comments and formatting are not preserved. Raises ValueError for values
    INI cannot represent (blank or comment-like lines inside a multi-line value).
    """
    blocks = []
    if config.defaults.own_keys():
        blocks.append(_write_section(DEFAULT, config.defaults))
    for name in config:
        blocks.append(_write_section(name, config[name]))
    return "\n\n".join("\n".join(block) for block in blocks) + ("\n" if blocks else "")
