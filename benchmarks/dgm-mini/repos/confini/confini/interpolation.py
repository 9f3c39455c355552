"""Expansion of ${key} and ${section:key} references."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from confini.errors import InterpolationError

if TYPE_CHECKING:
    from confini.config import Config

# "$$" is an escaped dollar; it must be matched in the same pass as references
# so that "$${x}" stays the literal text "${x}".
_TOKEN = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<ref>[^{}]*)\}|(?P<bad>))")


def interpolate(config: Config, section: str, value: str) -> str:
    """`value`, read in `section`, with every reference expanded."""

    def replace(match: re.Match[str]) -> str:
        if match["dollar"] is not None:
            return "$"
        if match["ref"] is None:
            raise InterpolationError(
                f"[{section}]: stray '$' in {value!r} (write '$$' for a literal dollar)"
            )
        ref = match["ref"].strip()
        target, sep, key = ref.rpartition(":")
        target = target.strip() if sep else section
        key = key.strip().lower()
        if not key:
            raise InterpolationError(f"[{section}]: empty reference in {value!r}")
        raw = config.lookup_raw(target, key)
        if raw is None:
            raise InterpolationError(f"[{section}]: reference ${{{ref}}} names no key")
        return interpolate(config, target, raw)

    return _TOKEN.sub(replace, value)
