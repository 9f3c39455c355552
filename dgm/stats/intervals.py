"""The Wilson score interval of a resolve rate, and how a score is written.

A score is a proportion of a small sample (a few dozen task runs), so it is
shown with its 95 % Wilson interval and its n: `0.73 [0.55–0.86] n=22`.
Wilson, not the normal ("Wald") interval: it stays inside [0, 1] and keeps
close to its nominal coverage at small n and at rates near 0 or 1, where
agent scores live.

The interval is the closed form (Wilson 1927) with the normal quantile from
the standard library: importing scipy.stats costs more than a whole `dgm ls`
(seconds on a loaded machine), and every browsing command shows intervals.
tests/unit/test_stats.py checks it against scipy's
`binomtest(k, n).proportion_ci(method="wilson")`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

CONFIDENCE = 0.95
"""Level of every interval dgm shows."""

# statistics.NormalDist().inv_cdf(0.975), written out: importing `statistics` is a cost every
# browsing command would pay for one constant (other levels import it when asked for).
_Z = {CONFIDENCE: 1.9599639845400536}


class Interval(NamedTuple):
    low: float
    high: float


def wilson_interval(resolved: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """The Wilson score interval of `resolved` successes in `n` trials (n >= 1)."""
    if n < 1 or not 0 <= resolved <= n:
        raise ValueError(f"need 0 <= resolved <= n and n >= 1, got {resolved}/{n}")
    z = _Z.get(confidence)
    if z is None:
        from statistics import NormalDist

        z = _Z[confidence] = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = resolved / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    # The bounds are exactly 0 and 1 at k = 0 and k = n; rounding must not push them past.
    low = 0.0 if resolved == 0 else max(0.0, centre - half)
    high = 1.0 if resolved == n else min(1.0, centre + half)
    return Interval(low, high)


def score_label(score: float | None, resolved: int | None = None, n: int | None = None) -> str:
    """A score as every view writes it: `0.73 [0.55–0.86] n=22`.

    `score` is the agent's recorded score (what ranking uses); the interval is
    that of `resolved` of `n` task runs behind it. Without runs behind it (an
    imported score) it says n=0; without a score, "-".
    """
    if score is None:
        return "-"
    if not n:
        return f"{score:.2f} n=0"
    low, high = wilson_interval(resolved or 0, n)
    return f"{score:.2f} [{low:.2f}\u2013{high:.2f}] n={n}"


def rate_label(resolved: int, n: int) -> str:
    """`resolved` of `n` as a rate with its interval (for counts with no recorded score)."""
    return "-" if not n else score_label(resolved / n, resolved, n)


def interval_fields(resolved: int | None, n: int | None) -> dict:
    """The interval as JSON fields (`--json`, the explorer's API): n, low, high (None without runs)."""
    if not n:
        return {"n": n or 0, "low": None, "high": None}
    low, high = wilson_interval(resolved or 0, n)
    return {"n": n, "resolved": resolved, "low": round(low, 4), "high": round(high, 4)}
