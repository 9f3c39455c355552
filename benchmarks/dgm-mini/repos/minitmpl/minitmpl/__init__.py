"""A small Jinja-like template engine."""

from minitmpl.errors import TemplateError, TemplateSyntaxError, UndefinedError
from minitmpl.markup import Markup, escape
from minitmpl.template import Template, render

__all__ = ["Markup", "Template", "TemplateError", "TemplateSyntaxError", "UndefinedError", "escape", "render"]

__version__ = "0.5.0"
