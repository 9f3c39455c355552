"""What "the best agent" means, in one place.

The highest selection score. Among equal scores, an agent with a held-out
score comes before one without, and a higher held-out score first: the loop
evaluates held-out tasks on the agents it ranks first, so the agent shown as
best is one whose generalisation was measured. Then the earlier generation,
then `tiebreak`. The loop passes the agent's slot (deterministic under a
seed); views of a finished archive pass the id, which picks the same agent
unless two agents of one generation tie on both scores.

Only agents whose evaluation is over can be best: a child still being
evaluated carries the score of the stages it has done so far.
"""

from __future__ import annotations


def best_key(score: float | None, heldout_score: float | None, generation: int | None, tiebreak) -> tuple:
    """Sort key: the smallest key is the best agent."""
    return (-(score or 0.0), heldout_score is None, -(heldout_score or 0.0), generation or 0, tiebreak)


# An agent in one of these has not finished its evaluation (see dgm.archive.models.AGENT_STATUSES).
IN_FLIGHT = ("pending", "self_modifying", "evaluating")


def can_be_best(score: float | None, status: str | None) -> bool:
    return score is not None and status not in IN_FLIGHT
