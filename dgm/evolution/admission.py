"""keep_better admission: is a child worse than its parent?

Two ways, chosen by `admission_test` in the campaign config:

- `paired` (default): the paired test of `dgm compare` (dgm.stats.paired)
  on the selection tasks both ran in the campaign. The child is refused only
  when the test says, at level `admission_alpha`, that its parent is better;
  a child a task or two behind on a handful of tasks is noise and is kept.
- `allowance`: the fixed rule DGM-style loops used: refused when its score
  is below its parent's minus `noise_allowance`, however few tasks the two
  scores rest on.

Pure: scores and per-task outcomes in, a reason to refuse (or None) out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dgm.stats.paired import B_BETTER, compare_outcomes


def keep_better_refusal(*, test: str, child_score: float | None, parent_score: float | None,
                        child_outcomes: Mapping[str, Sequence[bool]], parent_outcomes: Mapping[str, Sequence[bool]],
                        alpha: float, allowance: float) -> str | None:
    """Why keep_better refuses the child, or None to admit it."""
    child, parent = child_score or 0.0, parent_score or 0.0
    if test == "allowance":
        if child < parent - allowance:
            return f"keep_better: score {child:.3f} below parent's {parent:.3f} minus allowance {allowance}"
        return None
    if test != "paired":
        raise ValueError(f"unknown admission test {test!r}")
    result = compare_outcomes(child_outcomes, parent_outcomes, alpha)
    if result.verdict != B_BETTER:
        return None
    return (f"keep_better: worse than its parent by the paired test ({result.test} on the {result.shared_tasks} "
            f"task(s) both ran: the parent alone resolved {result.b_wins}, the child alone {result.a_wins}; "
            f"p = {result.p_value:.3g} < {alpha:g})")
