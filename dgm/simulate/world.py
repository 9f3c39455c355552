"""Ground truths for `dgm simulate`: what every agent a campaign could create
would resolve, so a policy can be run without sandboxes and judged by the
truth instead of by its own noisy scores.

A world answers three questions, all deterministic in (world seed, agent path):

* `seed()` - the seed agent;
* `child(parent, ordinal)` - the `ordinal`-th child a campaign makes of `parent`;
* each agent's `p` (per-task solve probabilities) and `outcomes` (one draw of
  every task, what an evaluation would see).

An agent is named by its *path*, the ordinals from the seed down (the seed is
(), its second child (1,), that child's first child (1, 0)). Two policies that
make the same child of the same parent get the very same agent and the very
same task outcomes (common random numbers), so the difference between their
results is the difference between the policies, not between their luck.

True quality = mean of `p` over all tasks: the expected resolve rate of the
agent on the whole benchmark, which no policy observes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dgm.errors import UsageError


@dataclass(eq=False)
class WorldAgent:
    path: tuple[int, ...]
    p: np.ndarray
    """Per-task probability of resolving the task (float64, one per task)."""
    outcomes: np.ndarray
    """One draw per task: what an evaluation of this agent sees (bool)."""
    broken: bool = False
    """Produces no usable patch: a campaign rejects it after evaluating it."""
    evaluable: bool = True
    """False: rejected before any task run (failed diagnosis or sanity gate)."""
    label: str = ""
    """The recorded agent id it stands for (recorded worlds)."""
    skill: np.ndarray | None = None
    """Per-task logits its children inherit (synthetic worlds)."""

    @property
    def quality(self) -> float:
        return float(self.p.mean())


class World(Protocol):
    name: str
    n_tasks: int

    def seed(self) -> WorldAgent: ...

    def child(self, parent: WorldAgent, ordinal: int) -> WorldAgent: ...


def _rng(seed: int, path: tuple[int, ...], salt: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([salt, seed, len(path), *path])))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class SyntheticParams:
    """A synthetic world. Skill is a per-task logit: p(agent, task) = sigmoid(skill).

    seed skill(t)  = logit(seed_rate) + difficulty(t),   difficulty ~ N(0, task_spread²)
    child skill(t) = parent skill(t) + shift + N(0, mutation²)   (heritable per task)
    shift          = +Exp(mean=gain)  with probability p_better (a real improvement)
                   = −Exp(mean=loss)  otherwise                 (most changes hurt)
    A child is broken (solves nothing, is rejected) with probability p_broken.

    A large task_spread makes most tasks near-certain one way or the other for
    a given agent (SWE-bench-like: a task is within reach or it is not); a
    small one makes every run a coin flip (a stochastic model on mid-hard tasks).
    """

    n_tasks: int = 200
    seed_rate: float = 0.4
    task_spread: float = 2.5
    p_better: float = 0.2
    gain: float = 0.35
    loss: float = 0.6
    mutation: float = 0.3
    p_broken: float = 0.1

    def __post_init__(self) -> None:
        if self.n_tasks < 1:
            raise UsageError(f"a synthetic world needs at least one task, got {self.n_tasks}")
        if not 0.0 < self.seed_rate < 1.0:
            raise UsageError(f"seed_rate must be strictly between 0 and 1, got {self.seed_rate}")
        for name in ("p_better", "p_broken"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"{name} must be a probability, got {getattr(self, name)}")
        for name in ("task_spread", "gain", "loss", "mutation"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} cannot be negative, got {getattr(self, name)}")


SYNTHETIC_WORLDS: dict[str, SyntheticParams] = {
    # Most changes cost a little, one in five gains a little; tasks mostly settled per agent.
    "gentle": SyntheticParams(),
    # Changes usually hurt a lot and often break the agent; real gains are rare but large.
    "harsh": SyntheticParams(seed_rate=0.3, p_better=0.1, gain=0.6, loss=1.2, p_broken=0.25),
    # Every run is close to a coin flip: task difficulty varies little, so outcomes are noise-heavy.
    "noisy": SyntheticParams(seed_rate=0.45, task_spread=0.6, p_better=0.2, gain=0.3, loss=0.5,
                             mutation=0.2),
    # Small differences: children within a few points of their parent, in both directions.
    "flat": SyntheticParams(seed_rate=0.5, p_better=0.35, gain=0.15, loss=0.2, mutation=0.2, p_broken=0.05),
}
"""The named synthetic worlds (`dgm simulate --world NAME`)."""


class SyntheticWorld:
    """Lineages with heritable per-task skill (see `SyntheticParams`)."""

    def __init__(self, params: SyntheticParams, seed: int, name: str = "synthetic"):
        self.params = params
        self.seed_value = int(seed)
        self.name = name
        self.n_tasks = params.n_tasks
        rng = _rng(self.seed_value, (), 1)
        base = np.log(params.seed_rate / (1.0 - params.seed_rate))
        self._seed_skill = base + rng.normal(0.0, params.task_spread, params.n_tasks)
        self._seed_agent: WorldAgent | None = None
        self._children: dict[tuple[int, ...], WorldAgent] = {}

    def _agent(self, path: tuple[int, ...], skill: np.ndarray, broken: bool) -> WorldAgent:
        p = np.zeros(self.n_tasks) if broken else _sigmoid(skill)
        draws = _rng(self.seed_value, path, 2).random(self.n_tasks)
        return WorldAgent(path=path, p=p, outcomes=draws < p, broken=broken, skill=skill)

    def seed(self) -> WorldAgent:
        if self._seed_agent is None:
            self._seed_agent = self._agent((), self._seed_skill, False)
        return self._seed_agent

    def child(self, parent: WorldAgent, ordinal: int) -> WorldAgent:
        path = (*parent.path, ordinal)
        known = self._children.get(path)
        if known is None:  # every policy run on this world meets the same child: make it once
            known = self._children[path] = self._make_child(parent, path)
        return known

    def _make_child(self, parent: WorldAgent, path: tuple[int, ...]) -> WorldAgent:
        prm = self.params
        rng = _rng(self.seed_value, path, 3)
        better = rng.random() < prm.p_better
        shift = rng.exponential(prm.gain) if better else -rng.exponential(prm.loss) if prm.loss > 0 else 0.0
        broken = bool(rng.random() < prm.p_broken)
        skill = parent.skill + shift + rng.normal(0.0, prm.mutation, self.n_tasks)
        return self._agent(path, skill, broken)


@dataclass
class RecordedAgent:
    agent_id: str
    parent_id: str | None
    outcomes: dict[str, float]
    """task id -> resolve rate observed (the mean over its finished runs)."""
    admitted: bool
    children: list[str] = field(default_factory=list)


class RecordedWorld:
    """The truth read from a recorded campaign.

    p(agent, task) = the resolve rate the campaign observed for that agent on
    that task; on a task it never ran, the agent's observed rate over the
    tasks it ran, smoothed by a uniform prior ((s + 1) / (n + 2)). A child of
    recorded agent X is one of X's recorded children, drawn uniformly; if X
    had none, one of the children of X's nearest ancestor that had some (X's
    relatives stand in for the children it never had). An agent the campaign
    did not admit is broken (rejected after its evaluation); one with no task
    run at all was rejected before evaluation and costs nothing. Outcomes are
    drawn afresh from p for every simulated agent.
    """

    def __init__(self, name: str, agents: list[RecordedAgent], task_ids: list[str], seed: int):
        if not agents:
            raise UsageError(f"campaign {name} has no agents to build a world from")
        roots = [a for a in agents if a.parent_id is None]
        if len(roots) != 1:
            raise UsageError(f"campaign {name}: expected one seed agent, found {len(roots)}")
        if not task_ids:
            raise UsageError(f"campaign {name} has no finished task run to build a world from")
        self.name = name
        self.seed_value = int(seed)
        self.task_ids = list(task_ids)
        self.n_tasks = len(task_ids)
        self.by_id = {a.agent_id: a for a in agents}
        for a in agents:
            if a.parent_id is not None and a.parent_id in self.by_id:
                self.by_id[a.parent_id].children.append(a.agent_id)
        self.root = roots[0]
        self._p: dict[str, np.ndarray] = {}
        column = {t: i for i, t in enumerate(self.task_ids)}
        for a in agents:
            rates = a.outcomes
            fill = (sum(rates.values()) + 1.0) / (len(rates) + 2.0)
            p = np.full(self.n_tasks, fill)
            for task, rate in rates.items():
                if task in column:
                    p[column[task]] = rate
            self._p[a.agent_id] = p

    def _agent(self, path: tuple[int, ...], recorded: RecordedAgent) -> WorldAgent:
        p = self._p[recorded.agent_id]
        draws = _rng(self.seed_value, path, 2).random(self.n_tasks)
        agent = WorldAgent(path=path, p=p, outcomes=draws < p, broken=not recorded.admitted,
                           evaluable=bool(recorded.outcomes), label=recorded.agent_id)
        return agent

    def seed(self) -> WorldAgent:
        return self._agent((), self.root)

    def child(self, parent: WorldAgent, ordinal: int) -> WorldAgent:
        path = (*parent.path, ordinal)
        node = self.by_id[parent.label]
        while not node.children and node.parent_id in self.by_id:
            node = self.by_id[node.parent_id]
        if not node.children:  # a campaign with a seed and nothing else
            return self._agent(path, self.by_id[parent.label])
        rng = _rng(self.seed_value, path, 3)
        pick = node.children[int(rng.integers(len(node.children)))]
        return self._agent(path, self.by_id[pick])

    def best_quality(self) -> float:
        return max(float(p.mean()) for p in self._p.values())


def recorded_world_data(reads, campaign: str) -> tuple[str, list[RecordedAgent], list[str]]:
    """A recorded campaign's agents and selection-task outcomes, read through
    the archive's browsing reads (`dgm.archive.readonly`). Held-out runs are
    left out (never used for selection), and so are agents still in flight. The world is
    `RecordedWorld(name, agents, tasks, seed)`."""
    record = reads.get_campaign(campaign)
    rates: dict[str, dict[str, list[int]]] = {}
    tasks: set[str] = set()
    for run in reads.list_task_runs(campaign_id=record.id, kind="task"):
        if run.stage == "heldout" or run.status in ("running", None):
            continue
        rates.setdefault(run.agent_id, {}).setdefault(run.task_id, []).append(run.status == "resolved")
        tasks.add(run.task_id)
    from dgm.ranking import IN_FLIGHT

    # An agent still in flight (a campaign running or stopped mid-generation) has no verdict yet: left out.
    agents = [RecordedAgent(agent_id=a.id, parent_id=a.parent_id,
                            outcomes={t: sum(v) / len(v) for t, v in rates.get(a.id, {}).items()},
                            admitted=a.status == "admitted")
              for a in reads.list_agents(record.id) if a.status not in IN_FLIGHT]
    return record.name or record.id, agents, sorted(tasks)
