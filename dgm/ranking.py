"""What "the best agent" means, in one place.

The highest selection score. Among equal scores, an agent with a held-out
score comes before one without, and a higher held-out score first: the loop
evaluates held-out tasks on the agents it ranks first, so the agent shown as
best is one whose generalisation was measured. Then the earlier generation,
then `tiebreak`. The loop passes the agent's slot (deterministic under a
seed); views of a finished archive pass the id, which picks the same agent
unless two agents of one generation tie on both scores.
"""

from __future__ import annotations


def best_key(score: float | None, heldout_score: float | None, generation: int | None, tiebreak) -> tuple:
    """Sort key: the smallest key is the best agent."""
    return (-(score or 0.0), heldout_score is None, -(heldout_score or 0.0), generation or 0, tiebreak)
