"""Text written by agents, made safe to show: no character in it may act on
the terminal or document it is shown in."""

from __future__ import annotations

# What a terminal would act on rather than show: C0 controls but tab and
# newline (ESC starts colour, title and clipboard sequences), DEL, C1 controls,
# and the bidirectional overrides that make text read backwards.
_UNSAFE = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0b, 0x20), 0x7f, *range(0x80, 0xa0))}
_UNSAFE.update({c: f"\\u{c:04x}" for c in (*range(0x202a, 0x202f), *range(0x2066, 0x206a))})


def terminal_safe(text: str) -> str:
    """`text` (written by an agent: its diff, its errors) with every control
    character shown as an escape, so printing it cannot drive the terminal."""
    return text.translate(_UNSAFE)
