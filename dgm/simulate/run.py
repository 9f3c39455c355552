"""Run campaign policies against a ground truth, over many seeds (`dgm simulate`).

One simulated campaign = one (world, policy, seed). It makes the same
decisions a campaign makes - parents by the campaign's selector, task runs by
the staging rule, admission, the pick - but a task run reads the world's
outcome instead of running a sandbox, and the result is judged by the truth:

* task runs spent (the seed's included: every policy evaluates it as deeply as its rule says);
* the true quality of the agent it picks (its mean solve probability over all tasks);
* regret: the best true quality among the agents it admitted minus the pick's;
* whether it picked the truly best of those.

Within one seed every policy meets the same world (see `world.py`): the same
seed agent, the same child for the same (parent, ordinal), the same outcome
of the same agent on the same task, and the same task order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from dgm.evolution.selection import StatsTable, select_parents
from dgm.evolution.staging import (CONTINUE, DONE, Stage, close_calls, comparable_scores, next_batch, sequential_reference,
                                   sequential_verdict, settle_batches, should_advance)
from dgm.simulate.policies import DGM_ADVANCE, HGM_PICK_QUANTILE, Policy, dgm_counts
from dgm.simulate.world import World, WorldAgent


@dataclass
class RunResult:
    task_runs: int
    pick_quality: float
    best_quality: float
    """Best true quality among the agents the campaign admitted (HGM: all its nodes)."""
    picked_best: bool
    agents: int

    @property
    def regret(self) -> float:
        return self.best_quality - self.pick_quality


SELECTORS_READING_TASKS = frozenset({"hgm_cmp", "novelty_share"})
"""Selectors that read solved tasks (clade totals, fitness sharing); the
others read scores and child counts only, so their tables skip the pairs."""


class _Agent:
    __slots__ = ("world", "parent", "generation", "seen", "n_children", "admitted", "capped", "index")

    def __init__(self, world: WorldAgent, parent: int, generation: int, seen: np.ndarray, index: int):
        self.world = world
        self.parent = parent
        self.generation = generation
        self.seen = seen
        """Outcomes in task order; the agent has run the first `n` of them."""
        self.n_children = 0
        self.admitted = False
        self.capped = False
        self.index = index

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"_Agent({self.index}, gen={self.generation}, quality={self.world.quality:.3f})"


class _Campaign:
    """One simulated campaign of a generation-based policy."""

    def __init__(self, world: World, policy: Policy, seed: int):
        self.world, self.policy, self.seed = world, policy, seed
        self.order = np.random.Generator(np.random.PCG64([7, seed])).permutation(world.n_tasks)
        self.agents: list[_Agent] = []
        self.runs: list[int] = []  # tasks run, per agent
        self.task_runs = 0
        self.rule = policy.sequential
        small, medium = dgm_counts(world.n_tasks)
        self._dgm = (small, medium)
        if policy.staging == "stages":
            self._stages = self._stage_objects(policy.stages)

    def _stage_objects(self, specs) -> list[Stage]:
        stages, start = [], 0
        for i, (count, threshold) in enumerate(specs):
            end = self.world.n_tasks if count is None else min(self.world.n_tasks, start + count)
            if end > start:
                stages.append(Stage(f"s{i}", tuple(str(t) for t in range(start, end)), threshold))
            start = end
        return stages

    # -- agents -------------------------------------------------------------
    def _add(self, world_agent: WorldAgent, parent: int, generation: int) -> _Agent:
        agent = _Agent(world_agent, parent, generation, world_agent.outcomes[self.order], len(self.agents))
        self.agents.append(agent)
        self.runs.append(0)
        return agent

    def _run(self, agent: _Agent, upto: int) -> None:
        upto = min(upto, self.world.n_tasks)
        done = self.runs[agent.index]
        if upto > done:
            self.task_runs += upto - done
            self.runs[agent.index] = upto

    def score(self, agent: _Agent) -> float:
        n = self.runs[agent.index]
        return float(agent.seen[:n].sum()) / n if n else 0.0

    # -- staging ------------------------------------------------------------
    def _evaluate(self, agent: _Agent, full_threshold: float, reference: _Agent | None) -> None:
        staging = self.policy.staging
        if staging in ("dgm", "dgm60"):
            small, medium = self._dgm
            self._run(agent, small)
            if not should_advance(Stage("small", (), DGM_ADVANCE), int(agent.seen[:small].sum()), small):
                return
            self._run(agent, small + medium)
            big = Stage("medium", (), full_threshold)
            if staging == "dgm" and should_advance(big, int(agent.seen[:small + medium].sum()), small + medium):
                self._run(agent, self.world.n_tasks)
                agent.capped = True
        elif staging == "stages":
            resolved = evaluated = 0
            for i, stage in enumerate(self._stages):
                before = self.runs[agent.index]
                self._run(agent, before + len(stage.task_ids))
                evaluated = self.runs[agent.index]
                resolved = int(agent.seen[:evaluated].sum())
                if i + 1 < len(self._stages) and not should_advance(stage, resolved, evaluated):
                    return
            agent.capped = True
        else:  # sequential: the campaign's own rule
            n_tasks = self.world.n_tasks
            ref = None if reference is None else agent_prefix(reference, self.runs[reference.index])
            while True:
                done = self.runs[agent.index]
                # A broken agent produces no patch on any task (`WorldAgent.broken`); every other one
                # is taken to produce patches, right or wrong.
                verdict = sequential_verdict(self.rule, agent_prefix(agent, done), ref, n_tasks,
                                             produced_patch=not agent.world.broken or agent.parent < 0)
                if verdict != CONTINUE:
                    agent.capped = verdict == DONE
                    return
                self._run(agent, next_batch(self.rule, done, n_tasks).stop)

    def _full_threshold(self) -> float:
        """DGM's: max(0.4, the second-highest score among fully evaluated agents)."""
        full = sorted((self.score(a) for a in self.agents if a.admitted and a.capped), reverse=True)
        second = full[1] if len(full) > 1 else full[0] if full else 0.0
        return max(DGM_ADVANCE, second)

    def _reference(self) -> _Agent | None:
        admitted = [a for a in self.agents if a.admitted]
        rid = sequential_reference([(a.index, self.score(a), self.runs[a.index]) for a in admitted],
                                   self.world.n_tasks, self.rule)
        if rid is None:
            return None
        return self.agents[rid]

    def _admit(self, agent: _Agent) -> bool:
        if agent.world.broken or not agent.world.evaluable:
            return False
        if self.policy.admission == "keep_better" and agent.parent >= 0:
            parent = self.agents[agent.parent]
            return self.score(agent) >= self.score(parent) - self.policy.noise_allowance
        return True

    # -- selection ----------------------------------------------------------
    def _table(self) -> StatsTable:
        rows = [a for a in self.agents if a.admitted or self.runs[a.index] > 0]
        ids = [str(a.index) for a in rows]
        parents = [str(a.parent) if a.parent >= 0 else None for a in rows]
        n = [self.runs[a.index] for a in rows]
        solved = [int(a.seen[:k].sum()) for a, k in zip(rows, n)]
        score = [s / k if k else 0.0 for s, k in zip(solved, n)]
        if self.policy.staging == "sequential":  # as the campaign's selector sees them
            comparable = comparable_scores({row: a.seen[:k].tolist() for row, (a, k) in enumerate(zip(rows, n))})
            score = [comparable.get(row, s) for row, s in enumerate(score)]
        pairs_agent, pairs_task = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        if self.policy.selection in SELECTORS_READING_TASKS:
            for row, (a, k) in enumerate(zip(rows, n)):
                hits = self.order[:k][a.seen[:k]]
                pairs_agent.append(np.full(len(hits), row))
                pairs_task.append(hits)
        return StatsTable.from_columns(
            ids, parents, score, [a.n_children for a in rows],
            np.concatenate(pairs_agent), np.concatenate(pairs_task),
            [k - s for s, k in zip(solved, n)], [a.admitted for a in rows])

    # -- the campaign --------------------------------------------------------
    def run(self) -> RunResult:
        seed_agent = self._add(self.world.seed(), -1, 0)
        if self.policy.staging == "sequential":
            self._run(seed_agent, self.rule.cap(self.world.n_tasks))
        else:
            self._run(seed_agent, self.world.n_tasks if self.policy.staging != "dgm60"
                      else sum(self._dgm))
        seed_agent.capped = True
        seed_agent.admitted = True
        k = self.policy.children_per_generation
        for generation in range(1, self.policy.generations + 1):
            table = self._table()
            parents = select_parents(self.policy.selection, table, k, seed=self.seed * 1_000_003 + generation)
            threshold = self._full_threshold()
            reference = self._reference() if self.policy.staging == "sequential" else None
            born = []
            for parent_id in parents:
                parent = self.agents[int(parent_id)]
                child = self._add(self.world.child(parent.world, parent.n_children), parent.index, generation)
                parent.n_children += 1
                born.append(child)
            for child in born:  # a generation's children are judged against the archive it started from
                if child.world.evaluable:
                    self._evaluate(child, threshold, reference)
            for child in born:
                child.admitted = self._admit(child)
        if self.policy.staging == "sequential":
            self._settle()  # after the last generation, as the campaign does
        return self._result(self._pick())

    def _settle(self) -> None:
        """`staging.close_calls` until the leader is settled: the campaign's own step."""
        n_tasks = self.world.n_tasks
        while True:
            pool = [a for a in self.agents if a.admitted and a.capped]
            ids = close_calls(self.rule, [(a.index, agent_prefix(a, self.runs[a.index])) for a in pool], n_tasks)
            if not ids:
                return
            for i, positions in settle_batches(self.rule, {i: self.runs[i] for i in ids}, n_tasks).items():
                self._run(self.agents[i], positions.stop)

    def _pick(self) -> _Agent:
        pool = [a for a in self.agents if a.admitted]
        if self.policy.staging == "sequential":
            pool = [a for a in pool if a.capped]
        return min(pool, key=lambda a: (-self.score(a), a.generation, a.index))

    def _result(self, pick: _Agent) -> RunResult:
        admitted = [a.world.quality for a in self.agents if a.admitted]
        best = max(admitted)
        return RunResult(self.task_runs, pick.world.quality, best, pick.world.quality >= best - 1e-12,
                         len(self.agents))


def agent_prefix(agent: _Agent, n: int) -> list[bool]:
    return agent.seen[:n].tolist()


# ---------------------------------------------------------------------------
# HGM
# ---------------------------------------------------------------------------


def _run_hgm(world: World, policy: Policy, seed: int) -> RunResult:
    from scipy.special import betaincinv

    rng = np.random.Generator(np.random.PCG64([11, seed]))
    n_tasks = world.n_tasks
    budget = policy.budget()
    worlds: list[WorldAgent] = [world.seed()]
    parent: list[int] = [-1]
    seen = [np.ones(n_tasks, dtype=bool)]  # the seed is evaluated on every task, as in HGM
    size = 64
    solved = np.zeros(size)
    tried = np.zeros(size)
    solved[0], tried[0] = worlds[0].outcomes.sum(), n_tasks
    children = [0]
    task_runs = n_tasks
    spent = expansions = 0
    max_expansions = 20 * budget + 100  # a world whose children all fail must still end
    while spent < budget:
        n = len(worlds)
        if spent ** policy.hgm_alpha >= n - 1 and expansions < max_expansions:
            expansions += 1
            # HGM expands only nodes with a positive mean utility.
            eligible = (tried[:n] > 0) & (solved[:n] > 0)
            hits = [np.flatnonzero(m & w.outcomes) for m, w in zip(seen, worlds)]
            table = StatsTable.from_columns(
                [str(i) for i in range(n)], [str(p) if p >= 0 else None for p in parent],
                np.divide(solved[:n], tried[:n], out=np.zeros(n), where=tried[:n] > 0), children,
                np.concatenate([np.full(len(h), i) for i, h in enumerate(hits)]), np.concatenate(hits),
                tried[:n] - solved[:n], eligible)
            (pid,) = select_parents("hgm_cmp", table, 1, seed=seed * 1_000_003 + expansions)
            p = int(pid)
            child = world.child(worlds[p], children[p])
            children[p] += 1
            if not child.evaluable:
                continue  # HGM's sample_child failed: no node
            if n == size:
                size *= 2
                solved, tried = np.resize(solved, size), np.resize(tried, size)
            solved[n] = tried[n] = 0
            worlds.append(child)
            parent.append(p)
            seen.append(np.zeros(n_tasks, dtype=bool))
            children.append(0)
            continue
        open_nodes = np.flatnonzero(tried[:n] < n_tasks)
        if not len(open_nodes):
            break
        s, t = solved[open_nodes], tried[open_nodes]
        node = int(open_nodes[np.argmax(rng.beta(1.0 + s, 1.0 + t - s))])
        remaining = np.flatnonzero(~seen[node])
        task = int(remaining[rng.integers(len(remaining))])
        seen[node][task] = True
        solved[node] += worlds[node].outcomes[task]
        tried[node] += 1
        spent += 1
        task_runs += 1
    n = len(worlds)
    lower = betaincinv(1.0 + solved[:n], 1.0 + tried[:n] - solved[:n], HGM_PICK_QUANTILE)
    pick = int(np.argmax(lower))
    qualities = [w.quality for w in worlds]
    best = max(qualities)
    return RunResult(task_runs, qualities[pick], best, qualities[pick] >= best - 1e-12, n)


# ---------------------------------------------------------------------------
# Many seeds
# ---------------------------------------------------------------------------


def simulate_one(world: World, policy: Policy, seed: int) -> RunResult:
    if policy.staging == "hgm":
        return _run_hgm(world, policy, seed)
    return _Campaign(world, policy, seed).run()


@dataclass
class PolicySummary:
    world: str
    policy: str
    seeds: int
    task_runs: np.ndarray
    pick_quality: np.ndarray
    best_quality: np.ndarray
    picked_best: np.ndarray

    @staticmethod
    def _ci(x: np.ndarray) -> float:
        return float(1.96 * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")

    @property
    def mean_runs(self) -> float:
        return float(self.task_runs.mean())

    @property
    def mean_quality(self) -> float:
        return float(self.pick_quality.mean())

    @property
    def quality_ci(self) -> float:
        return self._ci(self.pick_quality)

    @property
    def mean_regret(self) -> float:
        return float((self.best_quality - self.pick_quality).mean())

    @property
    def p_best(self) -> float:
        return float(self.picked_best.mean())

    def delta_quality(self, baseline: PolicySummary) -> tuple[float, float]:
        """Mean paired difference of the pick's true quality (this − baseline) and its 95 % half-width.
        Paired by seed: both met the same world."""
        d = self.pick_quality - baseline.pick_quality
        return float(d.mean()), self._ci(d)

    def as_dict(self, baseline: PolicySummary | None = None) -> dict:
        out = {"world": self.world, "policy": self.policy, "seeds": self.seeds,
               "task_runs_mean": self.mean_runs, "pick_quality_mean": self.mean_quality,
               "pick_quality_ci95": self.quality_ci, "regret_mean": self.mean_regret,
               "p_picks_truly_best": self.p_best}
        if baseline is not None:
            delta, ci = self.delta_quality(baseline)
            out.update(baseline=baseline.policy, runs_ratio=baseline.mean_runs / self.mean_runs,
                       delta_quality=delta, delta_quality_ci95=ci)
        return out


def simulate(make_world: Callable[[int], World], world_name: str, policies: Iterable[Policy], seeds: int,
             *, first_seed: int = 0, on_done: Callable[[], None] | None = None) -> list[PolicySummary]:
    """Every policy on `seeds` worlds (make_world(seed)), the same worlds for every policy."""
    policies = list(policies)
    results: dict[str, list[RunResult]] = {p.name: [] for p in policies}
    for seed in range(first_seed, first_seed + seeds):
        world = make_world(seed)
        for policy in policies:
            results[policy.name].append(simulate_one(world, policy, seed))
            if on_done:
                on_done()
    out = []
    for policy in policies:
        rs = results[policy.name]
        out.append(PolicySummary(
            world=world_name, policy=policy.name, seeds=seeds,
            task_runs=np.array([r.task_runs for r in rs], dtype=np.float64),
            pick_quality=np.array([r.pick_quality for r in rs]),
            best_quality=np.array([r.best_quality for r in rs]),
            picked_best=np.array([r.picked_best for r in rs], dtype=bool)))
    return out
