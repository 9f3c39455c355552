"""Paired comparison of two agents on the tasks both ran.

Two agents' scores on different tasks, or read without pairing, differ by
a few tasks through noise alone; on the same tasks each task is its own
control. The test depends on how many runs each agent has per task:

- one run each (the common case): the **exact McNemar test**, a two-sided
  exact binomial test (p = 1/2) on the discordant tasks (resolved by one
  agent and not the other); concordant tasks say nothing about the
  difference;
- several runs per agent and task (repeats): per-task resolve rates, and the
  **Wilcoxon signed-rank test** on the per-task differences (zero
  differences dropped, as Wilcoxon did), since a rate of 2/3 is not a yes.

The verdict is at a stated level alpha (default 0.05): "A better" or "B
better" when the two-sided p-value is below alpha (the direction is the
sign of the difference), else "no evidence of a difference": never "equal",
which a test cannot show.

Pure: outcomes in, a result out. scipy is imported inside `compare_outcomes`
(seconds of import that browsing commands must not pay).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_ALPHA = 0.05
A_BETTER = "A better"
B_BETTER = "B better"
NO_EVIDENCE = "no evidence of a difference"
MCNEMAR = "exact McNemar"
WILCOXON = "Wilcoxon signed-rank"

Outcomes = Mapping[str, Iterable[bool]]
"""task id -> whether each of the agent's runs on it resolved it."""


@dataclass(frozen=True)
class TaskDifference:
    task_id: str
    a_resolved: int
    a_runs: int
    b_resolved: int
    b_runs: int

    @property
    def a_rate(self) -> float:
        return self.a_resolved / self.a_runs

    @property
    def b_rate(self) -> float:
        return self.b_resolved / self.b_runs

    @property
    def winner(self) -> str:
        return "A" if self.a_rate > self.b_rate else "B"


@dataclass(frozen=True)
class PairedComparison:
    test: str
    """MCNEMAR (one run per agent and task) or WILCOXON (repeats)."""
    shared_tasks: int
    a_resolved: int
    a_runs: int
    b_resolved: int
    b_runs: int
    """Resolved runs and runs of each agent, on the shared tasks only."""
    p_value: float
    alpha: float
    verdict: str
    differing: list[TaskDifference] = field(default_factory=list)
    """The shared tasks on which the two agents' resolve rates differ, in task id order."""
    only_a: int = 0
    only_b: int = 0
    """Tasks only one of the two ran (left out of the test)."""

    @property
    def a_rate(self) -> float | None:
        return self.a_resolved / self.a_runs if self.a_runs else None

    @property
    def b_rate(self) -> float | None:
        return self.b_resolved / self.b_runs if self.b_runs else None

    @property
    def a_wins(self) -> int:
        return sum(1 for d in self.differing if d.winner == "A")

    @property
    def b_wins(self) -> int:
        return sum(1 for d in self.differing if d.winner == "B")

    def as_dict(self) -> dict:
        return {"test": self.test, "shared_tasks": self.shared_tasks, "alpha": self.alpha,
                "p_value": self.p_value, "verdict": self.verdict,
                "a": {"resolved": self.a_resolved, "runs": self.a_runs, "rate": self.a_rate},
                "b": {"resolved": self.b_resolved, "runs": self.b_runs, "rate": self.b_rate},
                "only_a_ran": self.only_a, "only_b_ran": self.only_b,
                "differing": [{"task_id": d.task_id, "winner": d.winner,
                               "a": [d.a_resolved, d.a_runs], "b": [d.b_resolved, d.b_runs]}
                              for d in self.differing]}


def check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"the level must be between 0 and 1 (exclusive), not {alpha}")
    return alpha


def mcnemar_exact_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 with none)."""
    if a_only + b_only == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(a_only, a_only + b_only, 0.5, alternative="two-sided").pvalue)


def signed_rank_p(differences: list[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of per-task differences (zeros dropped; 1.0 with none left)."""
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided").pvalue)


def compare_outcomes(a: Outcomes, b: Outcomes, alpha: float = DEFAULT_ALPHA) -> PairedComparison:
    """A against B on the tasks both ran (see the module's docstring)."""
    check_alpha(alpha)
    a_runs = {t: [bool(x) for x in runs] for t, runs in a.items()}
    b_runs = {t: [bool(x) for x in runs] for t, runs in b.items()}
    shared = sorted(t for t in a_runs.keys() & b_runs.keys() if a_runs[t] and b_runs[t])
    per_task = [TaskDifference(t, sum(a_runs[t]), len(a_runs[t]), sum(b_runs[t]), len(b_runs[t])) for t in shared]
    differing = [d for d in per_task if d.a_rate != d.b_rate]
    repeats = any(d.a_runs > 1 or d.b_runs > 1 for d in per_task)
    if repeats:
        test, p = WILCOXON, signed_rank_p([d.a_rate - d.b_rate for d in per_task])
        lead = sum(d.a_rate - d.b_rate for d in per_task)
    else:
        a_only = sum(1 for d in differing if d.winner == "A")
        test, p = MCNEMAR, mcnemar_exact_p(a_only, len(differing) - a_only)
        lead = 2 * a_only - len(differing)
    verdict = NO_EVIDENCE
    if p < alpha and lead != 0:
        verdict = A_BETTER if lead > 0 else B_BETTER
    return PairedComparison(
        test=test, shared_tasks=len(shared),
        a_resolved=sum(d.a_resolved for d in per_task), a_runs=sum(d.a_runs for d in per_task),
        b_resolved=sum(d.b_resolved for d in per_task), b_runs=sum(d.b_runs for d in per_task),
        p_value=p, alpha=alpha, verdict=verdict, differing=differing,
        only_a=len(a_runs.keys() - set(shared)), only_b=len(b_runs.keys() - set(shared)))
