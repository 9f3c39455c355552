"""Built-in functions and constants."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from minicalc.errors import ArityError, CalcError

Value = int | float


@dataclass(frozen=True)
class Function:
    name: str
    impl: Callable[..., Value]
    min_args: int
    max_args: int | None  # None: any number

    def expected(self) -> str:
        """How many arguments, in words: "1 argument", "1 or 2 arguments"."""
        lo, hi = self.min_args, self.max_args
        plural = "argument" if (hi if hi is not None else lo) == 1 else "arguments"
        if hi is None:
            return f"at least {lo} {plural}"
        if lo == hi:
            return f"{lo} {plural}"
        return f"{lo} or {hi} arguments" if hi == lo + 1 else f"{lo} to {hi} arguments"

    def __call__(self, args: Sequence[Value], pos: int | None = None) -> Value:
        n = len(args)
        if n < self.min_args or (self.max_args is not None and n > self.max_args):
            raise ArityError(f"{self.name}() takes {self.expected()} ({n} given)", pos)
        try:
            return self.impl(*args)
        except ValueError:
            # math raises ValueError for sqrt(-1), log(0), ...
            raise CalcError(f"math domain error in {self.name}()", pos) from None
        except OverflowError:
            raise CalcError(f"result of {self.name}() is too large", pos) from None


def _round(x: Value, ndigits: Value = 0) -> Value:
    if ndigits != int(ndigits):
        raise ValueError("ndigits must be a whole number")
    return round(x) if ndigits == 0 else round(x, int(ndigits))


BUILTINS: dict[str, Function] = {
    f.name: f
    for f in [
        Function("abs", abs, 1, 1),
        Function("ceil", math.ceil, 1, 1),
        Function("cos", math.cos, 1, 1),
        Function("exp", math.exp, 1, 1),
        Function("floor", math.floor, 1, 1),
        Function("hypot", math.hypot, 2, 2),
        Function("log", math.log, 1, 2),
        Function("max", max, 1, None),
        Function("min", min, 1, None),
        Function("round", _round, 1, 2),
        Function("sin", math.sin, 1, 1),
        Function("sqrt", math.sqrt, 1, 1),
        Function("tan", math.tan, 1, 1),
    ]
}

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
