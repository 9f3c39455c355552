"""Small text utilities for command-line tools."""

from textkit.case import camel_case, kebab_case, pascal_case, snake_case, split_words
from textkit.slug import slugify
from textkit.table import format_table
from textkit.truncate import truncate
from textkit.width import char_width, display_width
from textkit.wrap import fill, wrap

__all__ = [
    "camel_case",
    "char_width",
    "display_width",
    "fill",
    "format_table",
    "kebab_case",
    "pascal_case",
    "slugify",
    "snake_case",
    "split_words",
    "truncate",
    "wrap",
]

__version__ = "0.4.1"
