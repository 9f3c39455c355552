"""Diversity of an archive, measured on the sets of tasks its agents solve.

Pure functions, no I/O. Self-improvement loops tend to collapse diversity
(pass@1 up, pass@k down), so a campaign reports these next to its best score:

* `coverage`: how many distinct tasks at least one agent solves (the archive's
  pass@all); it only grows if some agent keeps a rare capability.
* `mean_pairwise_jaccard_distance`: how different the agents' solved sets are
  on average; near 0 means the archive has converged on one behaviour.
"""

from __future__ import annotations

import math
from typing import AbstractSet, Iterable, Sequence

import numpy as np

__all__ = ["DEFAULT_MAX_PAIRS", "coverage", "jaccard_distance", "mean_pairwise_jaccard_distance"]

DEFAULT_MAX_PAIRS = 20_000
"""Pairs evaluated before switching from all pairs to a random sample (std. error ≲ 0.004)."""


def coverage(solved_sets: Iterable[Iterable[str]]) -> int:
    """Number of distinct tasks solved by at least one agent."""
    return len(set().union(*solved_sets))


def jaccard_distance(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    """1 − |a ∩ b| / |a ∪ b|; two empty sets are identical (distance 0)."""
    inter = len(a & b)
    union = len(a) + len(b) - inter
    return 0.0 if union == 0 else 1.0 - inter / union


def _as_set(s: Iterable[str]) -> AbstractSet[str]:
    return s if isinstance(s, (set, frozenset)) else frozenset(s)


def mean_pairwise_jaccard_distance(
    solved_sets: Sequence[Iterable[str]],
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
) -> float | None:
    """Mean Jaccard distance over unordered pairs of distinct agents; None for < 2 agents.

    Exact (every pair) when there are at most `max_pairs` pairs. Beyond that,
    the mean over `max_pairs` pairs drawn uniformly at random (with
    replacement) with a seeded generator, so the cost stays bounded by
    `max_pairs` set intersections whatever the archive size; only the sampled
    agents' sets are touched.
    """
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1:
        raise ValueError(f"max_pairs must be a positive integer, got {max_pairs!r}")
    n = len(solved_sets)
    if n < 2:
        return None
    if n * (n - 1) // 2 <= max_pairs:
        sets = [_as_set(s) for s in solved_sets]
        total = math.fsum(
            jaccard_distance(sets[i], sets[j]) for i in range(n) for j in range(i + 1, n)
        )
        return total / (n * (n - 1) // 2)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.Generator(np.random.PCG64(seed))
    first = rng.integers(0, n, size=max_pairs)
    second = rng.integers(0, n - 1, size=max_pairs)
    second += second >= first  # uniform over the n − 1 agents other than `first`
    cache: dict[int, AbstractSet[str]] = {}

    def get(i: int) -> AbstractSet[str]:
        s = cache.get(i)
        if s is None:
            s = cache[i] = _as_set(solved_sets[i])
        return s

    total = math.fsum(jaccard_distance(get(i), get(j)) for i, j in zip(first.tolist(), second.tolist()))
    return total / max_pairs
