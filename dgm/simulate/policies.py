"""Campaign policies `dgm simulate` compares: selector × staging × admission × schedule.

Staging (how many task runs an agent gets):

* ``dgm``    - DGM's schedule (jennyzzt/dgm, DGM_outer.py and self_improve_step.py):
  10 tasks; 50 more if at least 40 % of the 10 resolved; the remaining 140 (of
  200) if the score over 60 reaches max(0.4, the second-highest score among
  fully evaluated agents). The released code computes that last threshold but
  never passes it on (its `full_eval_threshold` is unused); the paper's 200
  for the best is modelled as the paper describes it. On a benchmark of T
  tasks the counts scale: 5 %, 25 %, the rest.
* ``dgm60``  - the schedule the released code runs: 10, then 50 more, no full evaluation.
* ``stages`` - a campaign's own stages: (count, advance_threshold) pairs,
  each run only if `staging.should_advance` says so.
* ``sequential`` - this project's rule (`dgm.evolution.staging.sequential_verdict`,
  the very code a campaign with ``staging = "sequential"`` runs).

Schedule: `generations` × `children_per_generation`, parents chosen by a
selector of `dgm.evolution.selection` (the campaign's own code), except for
``hgm``: the Huxley-Gödel Machine's loop (metauto-ai/HGM, hgm.py), which has
no generations: with n task runs spent on children so far and N nodes, it
expands (a new child of a node drawn by Thompson sampling on its clade's
results, `hgm_cmp`, among nodes that resolved something) when n^α ≥ N − 1,
and otherwise evaluates one task: a node drawn by Thompson sampling on its
own results among nodes with tasks left, a task drawn uniformly among those
it has not run (HGM's eval_random_level = 1). α = 0.6 as in HGM's config. It
stops at a budget of task runs on children; by default the budget at which
the n^α rule makes as many children as the generation-based policies
(budget = children^(1/α)). HGM's code has no rule for the final pick; we take
the node with the highest 10 % lower posterior bound, Beta(1 + s, 1 + f), so a
node with 2 of 2 does not beat one with 150 of 200.

Picks: ``dgm``/``dgm60``/``stages``: the highest score among admitted agents,
ties to the earlier (`dgm.ranking.best_key` without held-out scores);
``sequential``: the highest score among admitted agents evaluated to the cap
(one stopped early was shown worse than one that was).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dgm.errors import UsageError
from dgm.evolution.selection import SELECTORS
from dgm.evolution.staging import SequentialRule

STAGINGS = ("dgm", "dgm60", "stages", "sequential", "hgm")
DGM_SMALL, DGM_MEDIUM, DGM_TOTAL = 10, 50, 200
DGM_ADVANCE = 0.4
HGM_ALPHA = 0.6
HGM_PICK_QUANTILE = 0.1


@dataclass(frozen=True)
class Policy:
    name: str
    staging: str
    selection: str = "score_child_prop"
    admission: str = "keep_all"
    noise_allowance: float = 0.05
    generations: int = 20
    children_per_generation: int = 2
    stages: tuple[tuple[int | None, float], ...] = ()
    """staging 'stages': (task count, advance threshold) per stage; None: the rest."""
    sequential: SequentialRule = field(default_factory=SequentialRule)
    hgm_alpha: float = HGM_ALPHA
    hgm_budget: int | None = None
    """Task runs on children for 'hgm' (None: as many children as the others make)."""

    def __post_init__(self) -> None:
        if self.staging not in STAGINGS:
            raise UsageError(f"unknown staging {self.staging!r} (known: {', '.join(STAGINGS)})")
        if self.selection not in SELECTORS:
            raise UsageError(f"unknown selection method {self.selection!r} (known: {', '.join(sorted(SELECTORS))})")
        if self.admission not in ("keep_all", "keep_better"):
            raise UsageError(f"unknown admission {self.admission!r} (known: keep_all, keep_better)")
        if self.generations < 0 or self.children_per_generation < 1:
            raise UsageError("generations must be 0 or more and children_per_generation at least 1")
        if self.staging == "stages" and not self.stages:
            raise UsageError("staging 'stages' needs at least one stage")
        if not 0.0 < self.hgm_alpha <= 1.0:
            raise UsageError(f"hgm alpha must be in (0, 1], got {self.hgm_alpha}")

    @property
    def n_children(self) -> int:
        return self.generations * self.children_per_generation

    def budget(self) -> int:
        """HGM's task-run budget on children."""
        if self.hgm_budget is not None:
            return self.hgm_budget
        return max(1, round(self.n_children ** (1.0 / self.hgm_alpha)))


def dgm_counts(n_tasks: int) -> tuple[int, int]:
    """DGM's small and medium stage sizes scaled to a benchmark of n_tasks (10 and 50 of 200)."""
    small = max(1, round(n_tasks * DGM_SMALL / DGM_TOTAL))
    medium = max(0, min(n_tasks - small, round(n_tasks * DGM_MEDIUM / DGM_TOTAL)))
    return small, medium


def standard_policies(generations: int = 20, children: int = 2, selection: str = "score_child_prop",
                      admission: str = "keep_all", rule: SequentialRule | None = None,
                      hgm_budget: int | None = None) -> dict[str, Policy]:
    """The policies compared by default, by name."""
    common = dict(selection=selection, admission=admission, generations=generations,
                  children_per_generation=children)
    rule = rule or SequentialRule()
    return {
        "dgm": Policy("dgm", "dgm", **common),
        "dgm60": Policy("dgm60", "dgm60", **common),
        "hgm": Policy("hgm", "hgm", **{**common, "selection": "hgm_cmp"}, hgm_budget=hgm_budget),
        "sequential": Policy("sequential", "sequential", sequential=rule, **common),
    }


def from_config(config, name: str = "config") -> Policy:
    """A campaign config's own policy (`dgm simulate --config`)."""
    from dgm.evolution.staging import sequential_rule

    common = dict(selection=config.selection, admission=config.admission, noise_allowance=config.noise_allowance,
                  generations=config.generations, children_per_generation=config.children_per_generation)
    if config.staging == "sequential":
        return Policy(name, "sequential", sequential=sequential_rule(config), **common)
    specs = config.stages or [{"name": "small", "tasks": 6, "advance_threshold": 0.4},
                              {"name": "rest", "tasks": "rest", "advance_threshold": 0.0}]
    stages = []
    for spec in specs:
        spec = spec if isinstance(spec, dict) else spec.model_dump()
        tasks = spec["tasks"]
        if isinstance(tasks, int):
            count = tasks
        elif isinstance(tasks, list):
            count = len(tasks)
        elif tasks == "rest":
            count = None
        else:
            raise UsageError(f"stage {spec['name']}: `dgm simulate` needs a count, a list or 'rest', not {tasks!r}")
        stages.append((count, float(spec.get("advance_threshold", 0.0))))
    return Policy(name, "stages", stages=tuple(stages), **common)


def with_generations(policy: Policy, generations: int, children: int) -> Policy:
    return replace(policy, generations=generations, children_per_generation=children)
