"""How noisy an agent's score is, measured from repeated runs.

A real model is stochastic: an agent's run on a task is one sample of its
resolve rate there. With each task run K times (`dgm eval --repeats K`, a
stage's `repeats`), the score is the mean over all runs, each task has a
resolve rate, and the spread of the score between repeats is measured
instead of assumed. Pure: task runs (anything with `task_id`, `repeat` and
`status`) in, figures out.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class RepeatSummary:
    task_rates: dict[str, tuple[int, int]]
    """Task id -> (resolved runs, finished runs), in the order the runs came."""
    repeat_scores: tuple[float, ...]
    """Per repeat index (0, 1, ...): the resolved fraction of that repeat's finished runs."""
    score: float | None
    """Resolved fraction of all finished runs: the mean over all of the agent's runs."""
    runs: int
    """Finished runs counted."""
    spread: float | None
    """Sample standard deviation of the per-repeat scores (None with fewer than two repeats)."""
    standard_error: float | None
    """Of the score: the spread over the square root of the number of repeats."""

    @property
    def unstable_tasks(self) -> list[str]:
        """Tasks resolved in some runs and not in others: where the noise comes from."""
        return [t for t, (resolved, n) in self.task_rates.items() if 0 < resolved < n]


def summarize_repeats(runs) -> RepeatSummary:
    """The figures of `runs` (unfinished ones are left out: they are no sample)."""
    finished = [r for r in runs if r is not None and r.status != "running"]
    rates: dict[str, list[int]] = {}
    by_repeat: dict[int, list[int]] = {}
    for run in finished:
        ok = int(run.status == "resolved")
        entry = rates.setdefault(run.task_id, [0, 0])
        entry[0] += ok
        entry[1] += 1
        by_repeat.setdefault(int(getattr(run, "repeat", 0) or 0), []).append(ok)
    repeat_scores = tuple(sum(v) / len(v) for _, v in sorted(by_repeat.items()))
    spread = statistics.stdev(repeat_scores) if len(repeat_scores) >= 2 else None
    return RepeatSummary(
        task_rates={t: (r, n) for t, (r, n) in rates.items()}, repeat_scores=repeat_scores,
        score=sum(int(r.status == "resolved") for r in finished) / len(finished) if finished else None,
        runs=len(finished), spread=spread,
        standard_error=None if spread is None else spread / len(repeat_scores) ** 0.5,
    )
