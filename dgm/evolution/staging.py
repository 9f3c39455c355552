"""Staged evaluation policy: which tasks an agent meets, in which order, and
when it stops early. Pure: a plan is a function of the config and the
benchmark's task ids, so a resumed campaign rebuilds the very same plan."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Mapping, Sequence

from dgm.errors import UsageError

HELDOUT = "heldout"
DEFAULT_SMALL = 6
DEFAULT_SMALL_THRESHOLD = 0.4
DEFAULT_HELDOUT_FRACTION = 0.25


@dataclass(frozen=True)
class Stage:
    name: str
    task_ids: tuple[str, ...]
    advance_threshold: float
    """Resolve rate over all stages so far needed to go on to the next stage."""
    repeats: int = 1
    """Runs of an agent on each task of the stage."""


@dataclass(frozen=True)
class StagePlan:
    stages: tuple[Stage, ...]
    heldout: tuple[str, ...]
    """Never used for selection or diagnosis; only the best agents meet them."""

    @property
    def selection_task_ids(self) -> tuple[str, ...]:
        return tuple(t for s in self.stages for t in s.task_ids)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)


def _resolve_ids(spec, all_ids: list[str], unused: list[str], rng: random.Random, benchmark, what: str) -> list[str]:
    if isinstance(spec, bool) or isinstance(spec, float) or (isinstance(spec, int) and spec < 0):
        # The config refuses these; a campaign recorded before it did must not end in a traceback.
        raise UsageError(f"{what}: expected task ids, a count (0 or more), 'rest' or 'subset:NAME', got {spec!r}")
    if isinstance(spec, int):
        if spec > len(unused):
            raise UsageError(f"{what}: asks for {spec} tasks but only {len(unused)} are left")
        return sorted(rng.sample(unused, spec), key=all_ids.index)
    if isinstance(spec, str):
        if spec == "rest":
            return list(unused)
        if spec.startswith("subset:"):
            if not benchmark.subsets():
                raise UsageError(f"{what}: benchmark {benchmark.name} has no named subsets")
            ids = list(benchmark.subset(spec.split(":", 1)[1]))
        else:
            raise UsageError(f"{what}: expected task ids, a count, 'rest' or 'subset:NAME', got '{spec}'")
    else:
        ids = list(spec)
    known = set(all_ids)
    missing = [i for i in ids if i not in known]
    if missing:
        raise UsageError(f"{what}: unknown task id(s): {', '.join(missing[:5])}")
    return ids


def build_plan(config, benchmark) -> StagePlan:
    """The campaign's stages and held-out set, deterministic in the config's seed."""
    all_ids = [t.instance_id for t in benchmark.tasks()]
    rng = random.Random(f"dgm-plan-{config.seed}")
    heldout_spec = config.heldout
    if heldout_spec is None:
        heldout_spec = max(1, round(len(all_ids) * DEFAULT_HELDOUT_FRACTION)) if len(all_ids) >= 4 else 0
    heldout = _resolve_ids(heldout_spec, all_ids, list(all_ids), rng, benchmark, "heldout") if heldout_spec else []
    unused = [i for i in all_ids if i not in set(heldout)]
    stage_specs = config.stages
    if stage_specs is None:
        small = min(DEFAULT_SMALL, len(unused))
        stage_specs = [{"name": "small", "tasks": small, "advance_threshold": DEFAULT_SMALL_THRESHOLD},
                       {"name": "rest", "tasks": "rest", "advance_threshold": 0.0}]
    stages = []
    empty: list[str] = []
    for spec in stage_specs:
        spec = spec if isinstance(spec, dict) else spec.model_dump()
        ids = _resolve_ids(spec["tasks"], all_ids, unused, rng, benchmark, f"stage {spec['name']}")
        overlap = set(ids) & set(heldout)
        if overlap:
            raise UsageError(f"stage {spec['name']}: held-out task(s) may not be used for selection: "
                             f"{', '.join(sorted(overlap)[:5])}")
        ids = [i for i in ids if i in set(unused)]
        unused = [i for i in unused if i not in set(ids)]
        if ids:
            stages.append(Stage(spec["name"], tuple(ids), float(spec.get("advance_threshold", 0.0)),
                                int(spec.get("repeats", 1))))
        else:
            empty.append(spec["name"])
    if not stages:
        why = (f"stage(s) {', '.join(empty)} select no task (their `tasks` are empty, or all held out or "
               "taken by earlier stages)") if empty else "no stage is configured"
        raise UsageError(f"the evaluation plan has no selection tasks: {why}")
    return StagePlan(tuple(stages), tuple(heldout))


def should_advance(stage: Stage, resolved_so_far: int, evaluated_so_far: int) -> bool:
    """DGM's rule: go on only if the resolve rate so far reaches the stage's threshold."""
    if evaluated_so_far == 0:
        return False
    return resolved_so_far / evaluated_so_far >= stage.advance_threshold


# ---------------------------------------------------------------------------
# Sequential evaluation (config `staging = "sequential"`)
# ---------------------------------------------------------------------------
#
# Every agent meets the selection tasks in one fixed order (the plan's), a
# batch at a time. After each batch the child is compared with the reference
# (the best agent evaluated to the cap) on the tasks both have run: only the
# discordant tasks, those one solved and the other did not, say anything about
# which is better. With b tasks won by the child and c by the reference, the
# chance θ that a discordant task goes to the child has the posterior
# Beta(1 + b, 1 + c) (uniform prior), and P(child better) = P(θ > ½). The
# child stops as soon as that falls below 1 − confidence: most children of a
# self-modifying agent are worse than the best, and a paired comparison sees
# it after a handful of tasks where the unpaired one needs dozens. A child
# that is not clearly worse goes on to the cap, so whatever can be picked as
# best has been measured as fully as the reference it beat.

SEQUENTIAL = "sequential"
STAGED = "stages"
STAGING_POLICIES = (STAGED, SEQUENTIAL)

CONTINUE = "continue"
WORSE = "worse"
NO_PATCH = "no_patch"
DONE = "done"


@dataclass(frozen=True)
class SequentialRule:
    batch: int = 3
    """Tasks run between two looks."""
    max_tasks: int | None = 21
    """Cap per agent (None: every selection task)."""
    confidence: float = 0.9
    """A child stops when P(it is better than the reference) < 1 − confidence."""
    settle_confidence: float | None = 0.9
    """`close_calls` drops a challenger when P(it beats the leader) < 1 − this (None: `confidence`)."""
    settle_margin: float = 0.03
    """`close_calls` drops a challenger when P(it beats the leader by more than this resolve rate) < 1 −
    settle_confidence: a difference smaller than the margin is not worth the task runs that would show it."""

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise UsageError(f"sequential staging: batch must be at least 1, got {self.batch}")
        if self.max_tasks is not None and self.max_tasks < 1:
            raise UsageError(f"sequential staging: max_tasks must be at least 1, got {self.max_tasks}")
        for name in ("confidence", "settle_confidence"):
            value = getattr(self, name)
            if value is not None and not 0.5 <= value < 1.0:
                raise UsageError(f"sequential staging: {name} must be in [0.5, 1), got {value}")
        if not 0.0 <= self.settle_margin < 1.0:
            raise UsageError(f"sequential staging: settle_margin must be in [0, 1), got {self.settle_margin}")

    def cap(self, n_tasks: int) -> int:
        return n_tasks if self.max_tasks is None else min(self.max_tasks, n_tasks)


def paired_win_probability(wins: int, losses: int) -> float:
    """P(θ > ½) for θ ~ Beta(1 + wins, 1 + losses): the posterior probability
    that the child is the better of two agents on the discordant tasks
    (wins: tasks only the child solved; losses: tasks only the reference solved).
    For integer parameters this is the binomial tail P(Bin(w + l + 1, ½) ≤ w)."""
    from scipy.special import bdtr

    return float(bdtr(wins, wins + losses + 1, 0.5))


MARGIN_GRID = 64
"""Quantiles of the discordance rate `paired_margin_probability` averages over."""


@functools.lru_cache(maxsize=65536)
def paired_margin_probability(wins: int, losses: int, shared: int, margin: float) -> float:
    """P(the child's resolve rate exceeds the reference's by more than `margin`), from `shared` tasks both
    ran, `wins` solved only by the child and `losses` only by the reference.

    Each task falls in one of three cells: won, lost, same; their rates (π_w, π_l, π_s) have the
    posterior Dirichlet(1 + wins, 1 + losses, 1 + same), and the difference of resolve rates is
    π_w − π_l = d·(2θ − 1), with the discordance rate d = π_w + π_l ~ Beta(2 + wins + losses, 1 + same)
    independent of θ = π_w / d ~ Beta(1 + wins, 1 + losses) (the posterior of
    `paired_win_probability`). So P = E_d[P(θ > ½ + margin / (2d))], averaged over quantiles of d: two
    agents that have not differed on a few tasks may still differ by the margin, and only more shared
    tasks can tell. margin 0 is `paired_win_probability`."""
    if margin <= 0.0:
        return paired_win_probability(wins, losses)
    import numpy as np
    from scipy.special import betainc, betaincinv

    same = max(0, shared - wins - losses)
    quantiles = (np.arange(MARGIN_GRID) + 0.5) / MARGIN_GRID
    discordance = betaincinv(2.0 + wins + losses, 1.0 + same, quantiles)
    cut = 0.5 + margin / (2.0 * discordance)
    tail = np.where(cut < 1.0, betainc(1.0 + losses, 1.0 + wins, np.clip(1.0 - cut, 0.0, 1.0)), 0.0)
    return float(tail.mean())


def sequential_verdict(rule: SequentialRule, child: Sequence[bool], reference: Sequence[bool] | None,
                       n_tasks: int, produced_patch: bool = True) -> str:
    """What to do with a child that has run the first len(child) tasks of the order.

    `reference`: the reference agent's outcomes on the same order (a prefix of
    it), or None when there is none yet (the seed): then the child runs to the
    cap. Returns CONTINUE (run the next batch), WORSE (stop: clearly worse
    than the reference), NO_PATCH (stop: `produced_patch` is False, none of
    its runs so far produced a patch; admission rejects a child without any
    patch, and a whole batch without one marks a broken agent, so the rest
    of its runs would be paid for a rejection) or DONE (the cap is reached).
    """
    n = len(child)
    if n > 0 and not produced_patch:
        return NO_PATCH
    if n >= rule.cap(n_tasks):
        return DONE
    if reference is not None and n > 0:
        m = min(n, len(reference))
        wins = sum(1 for c, r in zip(child[:m], reference[:m]) if c and not r)
        losses = sum(1 for c, r in zip(child[:m], reference[:m]) if r and not c)
        if paired_win_probability(wins, losses) < 1.0 - rule.confidence:
            return WORSE
    return CONTINUE


def next_batch(rule: SequentialRule, done: int, n_tasks: int) -> range:
    """Positions in the task order of the next batch for an agent that has run `done` tasks."""
    return range(done, min(done + rule.batch, rule.cap(n_tasks)))


def comparable_scores(records: Mapping[str, Sequence[bool]]) -> dict[str, float]:
    """Sequential staging: the resolve rates of agents that ran different prefixes of one task order,
    put on one scale for the parent selector.

    A child stopped after n tasks has a rate over the first n tasks of the order only. If those tasks
    are easier than the rest, every child stopped there looks better than the agents that ran on,
    though it was stopped for doing worse than them on those very tasks, and a selector reading bare
    rates would breed from the losers (harder first tasks: the other way round). So the rate of an
    agent with a shorter record is corrected by what the first n tasks are worth to the agents with
    the longest record: rate(its n) + mean over them of (rate over their record − rate over their
    first n), clipped to [0, 1]. An agent with no outcome is left out. `dgm simulate` showed the bare
    rates cost the pick 0.01 of true quality in its noisy and gentle worlds."""
    lengths = {agent_id: len(r) for agent_id, r in records.items() if len(r)}
    if not lengths:
        return {}
    longest = max(lengths.values())
    full = [records[a] for a, n in lengths.items() if n == longest]
    full_rates = [sum(r) / longest for r in full]
    out = {}
    for agent_id, n in lengths.items():
        record = records[agent_id]
        rate = sum(record) / n
        if n < longest:
            rate += sum(f - sum(r[:n]) / n for f, r in zip(full_rates, full)) / len(full)
        out[agent_id] = min(1.0, max(0.0, rate))
    return out


def sequential_reference(candidates: Sequence[tuple[str, float, int]], n_tasks: int,
                         rule: SequentialRule) -> str | None:
    """The agent a child is compared with: the highest score among agents that
    ran to the cap (ties: the first given). `candidates`: (agent id, score,
    tasks run), in the order the archive ranks ties (older first)."""
    cap = rule.cap(n_tasks)
    best: tuple[str, float] | None = None
    for agent_id, score, runs in candidates:
        if runs >= cap and (best is None or score > best[1]):
            best = (agent_id, score)
    return best[0] if best else None


def close_calls(rule: SequentialRule, candidates: Sequence[tuple[str, Sequence[bool]]], n_tasks: int) -> list[str]:
    """The agents whose ranking is still a close call: each needs one more batch.

    `candidates`: (agent id, outcomes in task order) of the agents that ran
    to the cap, older first. The leader is the highest resolve rate (ties: the
    older). A challenger is a close call while the paired test on the tasks it
    shares with the leader does not call it worse (P(better) ≥ 1 − confidence)
    and one of the two still has tasks to run. Returns the leader and those
    challengers (empty once the leader is settled); after their next batches
    the caller asks again, so the remaining tasks go where they decide something.
    """
    if len(candidates) < 2:
        return []
    rates = [sum(o) / len(o) if len(o) else 0.0 for _, o in candidates]
    lead = max(range(len(candidates)), key=lambda i: (rates[i], -i))
    leader_id, leader = candidates[lead]
    close = []
    for i, (agent_id, outcomes) in enumerate(candidates):
        if i == lead or (len(outcomes) >= n_tasks and len(leader) >= n_tasks):
            continue
        m = min(len(outcomes), len(leader))
        wins = sum(1 for c, r in zip(outcomes[:m], leader[:m]) if c and not r)
        losses = sum(1 for c, r in zip(outcomes[:m], leader[:m]) if r and not c)
        if wins + losses == 0:
            continue  # never differed on a shared task (twins, say): nothing to decide, nothing to lose
        chance = paired_margin_probability(wins, losses, m, rule.settle_margin)
        if chance >= 1.0 - (rule.settle_confidence or rule.confidence):
            close.append((chance, -i, agent_id))
    return [leader_id, max(close)[2]] if close else []


def settle_batches(rule: SequentialRule, lengths: dict[str, int], n_tasks: int) -> dict[str, range]:
    """The task positions each agent of a close call (`close_calls`' ids; `lengths`: tasks each has run)
    runs next. Their paired test reads only the tasks both ran, so the one behind catches up first:
    both go to the shorter record's length plus one batch, which the one ahead may already have."""
    target = min(min(lengths.values()) + rule.batch, n_tasks)
    return {agent_id: range(done, target) for agent_id, done in lengths.items() if done < target}


def sequential_rule(config) -> SequentialRule:
    """The campaign config's sequential rule."""
    return SequentialRule(batch=config.sequential_batch, max_tasks=config.sequential_max_tasks,
                          confidence=config.sequential_confidence,
                          settle_confidence=config.sequential_settle_confidence,
                          settle_margin=config.sequential_settle_margin)
