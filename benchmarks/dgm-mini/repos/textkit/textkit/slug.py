"""URL slugs."""

from __future__ import annotations

import re
import unicodedata

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def slugify(text: str, sep: str = "-", *, max_length: int | None = None, lowercase: bool = True) -> str:
    """A URL-safe slug: ASCII letters and digits joined by `sep`.

    Accented letters lose their accents (``"Crème brûlée"`` -> ``"creme-brulee"``);
    characters without an ASCII decomposition are dropped. With `max_length`
    the slug is cut to at most that many characters.
    """
    if max_length is not None and max_length < 1:
        raise ValueError("max_length must be at least 1")
    # NFKD splits "é" into "e" + a combining accent, which the ASCII encode drops.
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    if lowercase:
        ascii_text = ascii_text.lower()
    slug = _NOT_ALNUM.sub(sep, ascii_text).strip(sep)
    if max_length is not None and len(slug) > max_length:
        slug = slug[:max_length]
    return slug
