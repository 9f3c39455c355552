"""Write a Config back out as text."""

from __future__ import annotations

from confini.config import DEFAULT, Config, Section


def _write_section(name: str, section: Section) -> list[str]:
    lines = [f"[{name}]"]
    for key, value in section.items():
        lines.append(f"{key} = {value}" if value else f"{key} =")
    return lines


def dumps(config: Config) -> str:
    """Configuration text that `confini.loads` reads back into an equal Config."""
    blocks = []
    if len(config.defaults):
        blocks.append(_write_section(DEFAULT, config.defaults))
    for name in config:
        blocks.append(_write_section(name, config[name]))
    return "\n\n".join("\n".join(block) for block in blocks) + ("\n" if blocks else "")
