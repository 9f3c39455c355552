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

# (section, key) pairs: a value's meaning depends on the section it is read in.
_Link = tuple[str, str]


def _describe(links: list[_Link]) -> str:
    return " -> ".join(f"[{section}] {key}" for section, key in links)


def interpolate(config: Config, section: str, value: str, key: str | None = None) -> str:
    """`value`, read in `section`, with every reference expanded.

    `key` names the value being read, so that a reference back to it is
    reported as a cycle from the start.
    """
    chain: list[_Link] = [(section, key.lower())] if key else []
    return _expand(config, section, value, chain)


def _expand(config: Config, section: str, value: str, chain: list[_Link]) -> str:
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
        link = (target, key)
        if link in chain:
            cycle = chain[chain.index(link):] + [link]
            raise InterpolationError(f"circular reference: {_describe(cycle)}")
        raw = config.lookup_raw(target, key)
        if raw is None:
            raise InterpolationError(f"[{section}]: reference ${{{ref}}} names no key")
        return _expand(config, target, raw, chain + [link])

    return _TOKEN.sub(replace, value)
