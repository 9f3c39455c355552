"""A small, safe calculator language."""

from minicalc.errors import ArityError, CalcError, CalcSyntaxError, CalcZeroDivisionError, UnknownNameError
from minicalc.evaluator import evaluate_tree
from minicalc.functions import BUILTINS, CONSTANTS
from minicalc.parser import parse, parse_statement
from minicalc.session import Session, evaluate
from minicalc.unparse import to_source

__all__ = [
    "ArityError",
    "BUILTINS",
    "CONSTANTS",
    "CalcError",
    "CalcSyntaxError",
    "CalcZeroDivisionError",
    "Session",
    "UnknownNameError",
    "evaluate",
    "evaluate_tree",
    "parse",
    "parse_statement",
    "to_source",
]

__version__ = "0.3.0"
