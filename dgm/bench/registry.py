"""Benchmarks by name. Adding one is one entry in `_FACTORIES`."""

from __future__ import annotations

from typing import Any, Callable

from dgm.bench.base import Benchmark
from dgm.errors import NotFound


def _dgm_mini() -> Benchmark:
    from dgm.bench.dgm_mini import DgmMini

    return DgmMini()


def _swebench(name: str) -> Callable[..., Benchmark]:
    def factory(**options: Any) -> Benchmark:
        from dgm.bench.swebench.benchmark import SweBench

        return SweBench(name, **options)

    return factory


def _polyglot(**options: Any) -> Benchmark:
    from dgm.bench.polyglot.benchmark import Polyglot

    return Polyglot(**options)


# Factories import lazily so that naming a benchmark never pays for the
# dependencies of the others.
_FACTORIES: dict[str, Callable[[], Benchmark]] = {
    "dgm-mini": _dgm_mini,
    # Options: dataset (file or hub name), images (auto|pull|build|offline), repo_mirror (dir).
    "swebench-lite": _swebench("swebench-lite"),
    "swebench-verified": _swebench("swebench-verified"),
    # Options: dataset (a polyglot-benchmark checkout; required).
    "polyglot": _polyglot,
}


# Spellings recorded by earlier dgm versions (imports of DGM runs said "swe-bench-verified").
_ALIASES = {"swe-bench-verified": "swebench-verified", "swe-bench-lite": "swebench-lite"}


def canonical_name(name: str) -> str:
    return _ALIASES.get(name, name)


def known_name(name: str) -> str:
    """The registered name `name` stands for; NotFound for names nobody registered."""
    canonical = canonical_name(name)
    if canonical not in _FACTORIES:
        raise NotFound(f"unknown benchmark {name!r} (known: {', '.join(known_benchmarks())})")
    return canonical


def known_benchmarks() -> list[str]:
    """Names `load_benchmark` accepts, sorted."""
    return sorted(_FACTORIES)


def load_benchmark(name: str, **options: Any) -> Benchmark:
    """The benchmark called `name`; NotFound for names nobody registered.

    `options` go to benchmarks that take them (SWE-bench: dataset, images,
    repo_mirror); None values are dropped, so callers can pass CLI flags as is.
    """
    factory = _FACTORIES[known_name(name)]
    options = {k: v for k, v in options.items() if v is not None}
    if not options:
        return factory()
    try:
        return factory(**options)
    except TypeError:
        from dgm.errors import UsageError

        raise UsageError(f"benchmark {name} takes no options ({', '.join(sorted(options))} given)") from None
