"""Safe strings and HTML escaping."""

from __future__ import annotations

import html


class Markup(str):
    """A string that is already safe HTML and must not be escaped again."""

    def __repr__(self) -> str:
        return f"Markup({str.__repr__(self)})"


def escape(value: object) -> Markup:
    """`value` as HTML-escaped Markup (unchanged if it already is Markup)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))
