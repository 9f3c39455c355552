"""Parent selectors: pure functions of archive statistics.

A selector gets one `AgentStats` row per archived agent (or a prebuilt
`StatsTable`), a number of parents `k` and a seed, and returns `k` agent ids,
drawn *with replacement* from the eligible agents, as DGM does. Selectors do
no I/O and read no database, so a decision can be replayed offline from a
recorded archive: the same rows in the same order with the same seed give the
same ids (for a given NumPy version; NumPy does not promise identical Beta
streams across releases, which only `hgm_cmp` uses).

Methods (see `SELECTORS`):

* ``score_child_prop`` - DGM's default: weight = sigmoid(10·(score−0.5)) / (1 + n_children).
* ``score_prop``       - weight = sigmoid(10·(score−0.5)).
* ``best``             - the top-k by score (ties: fewer children, then agent id); cycles if fewer than k.
* ``random``           - uniform over eligible agents.
* ``hgm_cmp``          - Huxley-Gödel Machine: Thompson sampling on clade results.
* ``novelty_share``    - DGM's weights mixed with implicit fitness sharing over solved tasks.

``hgm_cmp``: an agent's clade is itself plus all its descendants through
``parent_id`` links (ineligible descendants count; a ``parent_id`` not among
the rows makes the agent a root). With s, f the clade's total solved and
failed counts, each eligible agent draws θ ~ Beta(1 + s, 1 + f) and the argmax
is chosen; the k picks use independent draws.

``novelty_share`` (this project's diversity-aware selector)::

    w_i = sigmoid(10·(score_i − 0.5)) / (1 + n_children_i)          DGM's weight
    u_i = Σ_{t ∈ solved_i} 1 / n_t,   n_t = #eligible agents solving t
    v_i = u_i / (1 + n_children_i)
    P(i) = ½ · w_i / Σ_j w_j  +  ½ · v_i / Σ_j v_j                  (eligible i)

Why: u is implicit fitness sharing (Smith, Forrest & Perelson 1993): every
task the archive can solve is one unit of reward split equally among its
solvers, so Σ_i u_i = coverage, and drawing by u alone is "pick a solved task
uniformly, then one of its solvers". A capability held by one agent gets as
many parent slots as one held by a thousand, which keeps the rare stepping
stones that DGM's open-ended archive exists to preserve, and which a purely
score-driven selector loses as the archive converges (pass@1 up, pass@k
down). Ineligible agents are not counted in n_t: a capability only they hold
is not in the parent pool. The ½ mixture with DGM's own weight keeps
exploitation of high scorers and gives every eligible agent a positive
probability (u_i = 0 for agents solving nothing); the child penalty on both
halves makes an agent's pull decay as it is expanded, as in DGM. When no
eligible agent solves anything the selector is exactly ``score_child_prop``.
`NOVELTY_SHARE_MIX` is the ½.

Everything is vectorised over a columnar `StatsTable`, so a call over 100,000
agents costs milliseconds once the table exists. Building the table from
`AgentStats` objects is Python-level work proportional to the number of
agents (and, for ``novelty_share``, to the number of solved (agent, task)
pairs); `StatsTable.from_stats` extracts only the columns a method touches.
Callers selecting repeatedly on a large archive can build the table once, or
build it from query results with `StatsTable.from_columns`.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, count, repeat
from operator import attrgetter
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from dgm.errors import UsageError

__all__ = [
    "AgentStats",
    "AgentSelectionWeight",
    "NOVELTY_SHARE_MIX",
    "SELECTORS",
    "SelectionError",
    "SelectionExplanation",
    "StatsTable",
    "explain",
    "select_parents",
]

NOVELTY_SHARE_MIX = 0.5
"""Share of `novelty_share`'s probability mass given to the fitness-sharing term."""


class SelectionError(UsageError, ValueError):
    """Bad input to a selector: unknown method, no eligible agent, malformed statistics."""


@dataclass(frozen=True, slots=True)
class AgentStats:
    """What a selector may know about one archived agent."""

    agent_id: str
    parent_id: str | None
    score: float
    """Selection score: resolve rate on the tasks the agent was evaluated on (0..1)."""
    n_children: int
    """Children the agent already has in the archive."""
    solved: frozenset[str]
    """Task ids the agent resolved."""
    failed: frozenset[str]
    """Task ids the agent attempted and did not resolve."""
    eligible: bool = True
    """May be chosen as a parent (admitted to the archive)."""


# ---------------------------------------------------------------------------
# Columnar view
# ---------------------------------------------------------------------------


class StatsTable:
    """A read-only columnar view of archive statistics; row i is the i-th agent given.

    Build it with `from_stats` (columns are extracted lazily from the
    `AgentStats` objects, each at most once, and only when a method needs it)
    or with `from_columns` (arrays straight from query results). Columns are
    NumPy arrays that must not be modified.
    """

    _stats: Sequence[AgentStats] | None

    def __init__(self) -> None:  # pragma: no cover - guard
        raise TypeError("use StatsTable.from_stats(...) or StatsTable.from_columns(...)")

    # -- constructors -------------------------------------------------------

    @classmethod
    def from_stats(cls, stats: Sequence[AgentStats] | Iterable[AgentStats] | StatsTable) -> StatsTable:
        """A table over `AgentStats` rows (returned unchanged if already a table)."""
        if isinstance(stats, StatsTable):
            return stats
        self = cls.__new__(cls)
        self._stats = stats if isinstance(stats, (list, tuple)) else list(stats)
        self.n = len(self._stats)
        return self

    @classmethod
    def from_columns(
        cls,
        agent_ids: Sequence[str],
        parent_ids: Sequence[str | None],
        score: Sequence[float] | np.ndarray,
        n_children: Sequence[int] | np.ndarray,
        solved_agent: Sequence[int] | np.ndarray,
        solved_task: Sequence[int] | np.ndarray,
        n_failed: Sequence[int] | np.ndarray,
        eligible: Sequence[bool] | np.ndarray | None = None,
    ) -> StatsTable:
        """A table from columns, e.g. the results of two SQL queries.

        `solved_agent[j]`, `solved_task[j]` is one resolved (agent row, task)
        pair: the agent's row index in `agent_ids` and any integer naming the
        task (a task table's primary key will do). Each pair appears once.
        `n_failed[i]` is the number of tasks agent i attempted and did not
        resolve. `eligible` defaults to all True.
        """
        self = cls.__new__(cls)
        self._stats = None
        ids = list(agent_ids)
        n = self.n = len(ids)
        parents = list(parent_ids)
        if len(parents) != n:
            raise SelectionError(f"parent_ids has {len(parents)} entries, agent_ids {n}")
        d = self.__dict__
        d["_raw_ids"] = d["agent_ids"] = _check_ids(ids)
        d["score"] = _check_score(ids, np.asarray(score, dtype=np.float64))
        d["n_children"] = _check_counts(ids, "n_children", np.asarray(n_children, dtype=np.int64))
        d["n_failed"] = _check_counts(ids, "n_failed", np.asarray(n_failed, dtype=np.int64))
        el = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
        d["eligible"] = _check_len(ids, "eligible", el)
        row = d["row_of"] = dict(zip(ids, range(n)))
        d["parent"] = np.fromiter(map(row.get, parents, repeat(-1)), np.int64, n)
        sa = np.asarray(solved_agent, dtype=np.int64).ravel()
        st = np.asarray(solved_task, dtype=np.int64).ravel()
        if sa.shape != st.shape:
            raise SelectionError("solved_agent and solved_task must have the same length")
        if sa.size and (sa.min() < 0 or sa.max() >= n):
            raise SelectionError("solved_agent holds a row index outside 0..len(agent_ids)-1")
        tasks, st = np.unique(st, return_inverse=True)
        n_tasks = len(tasks)
        if sa.size and len(np.unique(sa * n_tasks + st)) != sa.size:
            raise SelectionError("a (solved_agent, solved_task) pair appears more than once")
        d["n_solved"] = np.bincount(sa, minlength=n).astype(np.int64)
        d["solved_incidence"] = (sa, st.astype(np.int64).ravel(), n_tasks)
        return self

    def materialize(self) -> StatsTable:
        """Extract every column now (for a table that will be reused many times)."""
        for name in ("agent_ids", "score", "n_children", "eligible", "parent",
                     "n_solved", "n_failed", "solved_incidence", "clade_totals"):
            getattr(self, name)
        return self

    def __len__(self) -> int:
        return self.n

    # -- columns --------------------------------------------------------------

    def _attr(self, name: str) -> list[Any]:
        assert self._stats is not None
        return list(map(attrgetter(name), self._stats))

    @cached_property
    def _raw_ids(self) -> list[str]:
        return self._attr("agent_id")

    @cached_property
    def agent_ids(self) -> list[str]:
        ids = self._raw_ids
        if "row_of" in self.__dict__:  # building that dict already proved the ids unique
            return ids
        return _check_ids(ids)

    @cached_property
    def row_of(self) -> dict[str, int]:
        """Agent id -> row."""
        ids = self._raw_ids
        row = dict(zip(ids, range(len(ids))))
        if len(row) != len(ids):
            _check_ids(ids)
        return row

    @cached_property
    def score(self) -> np.ndarray:
        try:
            arr = np.fromiter(map(attrgetter("score"), self._stats), np.float64, self.n)
        except (TypeError, ValueError) as exc:
            raise SelectionError(f"every AgentStats.score must be a number: {exc}") from None
        return _check_score(self.agent_ids, arr)

    @cached_property
    def n_children(self) -> np.ndarray:
        try:
            arr = np.fromiter(map(attrgetter("n_children"), self._stats), np.int64, self.n)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SelectionError(f"every AgentStats.n_children must be an integer: {exc}") from None
        return _check_counts(self.agent_ids, "n_children", arr)

    @cached_property
    def eligible(self) -> np.ndarray:
        return np.fromiter(map(attrgetter("eligible"), self._stats), bool, self.n)

    @cached_property
    def parent(self) -> np.ndarray:
        """Row of each agent's parent; -1 for roots and for parents not among the rows."""
        row = self.row_of
        # dict.get(p, -1): None and ids outside the rows both become roots.
        return np.fromiter(map(row.get, self._attr("parent_id"), repeat(-1)), np.int64, self.n)

    @cached_property
    def n_solved(self) -> np.ndarray:
        return np.fromiter(map(len, map(attrgetter("solved"), self._stats)), np.int64, self.n)

    @cached_property
    def n_failed(self) -> np.ndarray:
        return np.fromiter(map(len, map(attrgetter("failed"), self._stats)), np.int64, self.n)

    @cached_property
    def solved_incidence(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(agent row, task number, number of tasks) for every resolved (agent, task) pair."""
        sets = self._attr("solved")
        flat = list(chain.from_iterable(sets))
        # Task numbering follows set iteration order (hash-seed dependent); nothing
        # computed from it depends on the numbering, only on which rows share a task.
        number = dict(zip(set(flat), count()))
        task = np.fromiter(map(number.__getitem__, flat), np.int64, len(flat))
        agent = np.repeat(np.arange(self.n, dtype=np.int64), self.n_solved)
        return agent, task, len(number)

    @cached_property
    def eligible_rows(self) -> np.ndarray:
        return np.flatnonzero(self.eligible)

    @cached_property
    def clade_totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(solved, failed, size) summed over each agent's clade: itself and all descendants.

        Pointer doubling instead of a tree walk: after round r, acc[v] holds the
        totals of v's descendants at distance < 2**r, and jump[v] is v's 2**r-th
        ancestor; acc_{r+1}[v] = acc_r[v] + Σ_{w: jump_r[w] = v} acc_r[w]. Every
        round is a few O(n) array operations and there are ceil(log2(depth+1))
        rounds, so a 100,000-deep chain costs 17 rounds and no recursion.
        """
        n = self.n
        sentinel = n
        jump = np.append(np.where(self.parent < 0, sentinel, self.parent), sentinel)
        acc = np.zeros((3, n + 1), dtype=np.float64)
        acc[0, :n] = self.n_solved
        acc[1, :n] = self.n_failed
        acc[2, :n] = 1.0
        max_rounds = max(1, math.ceil(math.log2(n + 1))) + 1
        rounds = 0
        while np.any(jump[:n] != sentinel):
            if rounds >= max_rounds:
                raise SelectionError("parent_id links form a cycle")
            src = jump[:n]
            for row in range(3):
                acc[row] += np.bincount(src, weights=acc[row, :n], minlength=n + 1)
            acc[:, sentinel] = 0.0
            jump = jump[jump]
            rounds += 1
        # Counts are integers far below 2**53, so the float sums are exact.
        return acc[0, :n], acc[1, :n], acc[2, :n]


def _check_ids(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise SelectionError(f"agent id {dup!r} appears more than once")
    return ids


def _check_len(ids: list[str], name: str, arr: np.ndarray) -> np.ndarray:
    if arr.shape != (len(ids),):
        raise SelectionError(f"{name} has shape {arr.shape}, expected ({len(ids)},)")
    return arr


def _check_score(ids: list[str], arr: np.ndarray) -> np.ndarray:
    _check_len(ids, "score", arr)
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # also catches NaN
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SelectionError(f"agent {ids[i]!r} has score {float(arr[i])!r}; scores are resolve rates in [0, 1]")
    return arr


def _check_counts(ids: list[str], name: str, arr: np.ndarray) -> np.ndarray:
    _check_len(ids, name, arr)
    if arr.size and arr.min() < 0:
        i = int(np.argmin(arr))
        raise SelectionError(f"agent {ids[i]!r} has {name} = {arr[i]}; counts cannot be negative")
    return arr


# ---------------------------------------------------------------------------
# Weights (one per row; 0 for ineligible rows)
# ---------------------------------------------------------------------------


def _sigmoid_score(t: StatsTable) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-10.0 * (t.score - 0.5)))


def _child_penalty(t: StatsTable) -> np.ndarray:
    return 1.0 / (1.0 + t.n_children)


def _weights_score_child_prop(t: StatsTable) -> np.ndarray:
    return _sigmoid_score(t) * _child_penalty(t) * t.eligible


def _weights_score_prop(t: StatsTable) -> np.ndarray:
    return _sigmoid_score(t) * t.eligible


def _weights_random(t: StatsTable) -> np.ndarray:
    return t.eligible.astype(np.float64)


def _task_share(t: StatsTable) -> np.ndarray:
    """Σ over each eligible agent's solved tasks of 1 / (eligible agents solving that task).

    Each 1/n is rounded to a multiple of 2**-e small enough that every partial
    sum is exact in float64, so the result does not depend on the order in
    which set iteration delivered the pairs (that order varies with
    PYTHONHASHSEED, and replays must not).
    """
    agent, task, n_tasks = t.solved_incidence
    elig = t.eligible
    solvers = np.bincount(task[elig[agent]], minlength=n_tasks)
    max_solved = int(t.n_solved[elig].max())
    e = 52 - max(1, math.ceil(math.log2(max_solved + 1)))
    quantum = 2.0 ** -e
    inv = np.where(solvers > 0, np.round((1.0 / np.maximum(solvers, 1)) / quantum) * quantum, 0.0)
    # Ineligible rows get sums too (cheaper than filtering the pairs); zero them.
    share = np.bincount(agent, weights=inv[task], minlength=t.n)
    return share * elig


def _probabilities_novelty_share(t: StatsTable) -> np.ndarray:
    penalty = _child_penalty(t)
    perf = _sigmoid_score(t) * penalty * t.eligible
    rare = _task_share(t) * penalty
    p = perf / perf.sum()
    total_rare = rare.sum()
    if total_rare > 0:
        p = (1.0 - NOVELTY_SHARE_MIX) * p + NOVELTY_SHARE_MIX * (rare / total_rare)
    return p


# ---------------------------------------------------------------------------
# Pickers: (table, k, rng) -> row indices
# ---------------------------------------------------------------------------


def _draw_weighted(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k independent draws, P(row) ∝ weights; zero-weight rows are never drawn."""
    cdf = np.cumsum(weights)
    u = rng.random(k) * cdf[-1]
    rows = np.searchsorted(cdf, u, side="right")
    # u < cdf[-1] in exact arithmetic; guard the rounding case explicitly.
    last_positive = int(np.flatnonzero(weights > 0)[-1])
    return np.minimum(rows, last_positive)


def _weighted_picker(weight_fn: Callable[[StatsTable], np.ndarray]):
    def pick(t: StatsTable, k: int, rng: np.random.Generator) -> np.ndarray:
        return _draw_weighted(weight_fn(t), k, rng)

    return pick


def _pick_random(t: StatsTable, k: int, rng: np.random.Generator) -> np.ndarray:
    rows = t.eligible_rows
    return rows[rng.integers(0, len(rows), size=k)]


def _rank_best(t: StatsTable, k: int) -> list[int]:
    """The min(k, eligible) best rows by (score desc, n_children asc, agent_id asc), in order."""
    rows = t.eligible_rows
    take = min(k, len(rows))
    if take == 0:
        return []
    score, ids = t.score[rows], t.agent_ids
    if take < len(rows):
        cut = np.partition(score, len(rows) - take)[len(rows) - take]
        sure = rows[score > cut]
        tied = rows[score == cut]
    else:
        sure, tied = rows, rows[:0]
    need = take - len(sure)
    if need > 0:
        tkids = t.n_children[tied]
        ckid = np.partition(tkids, need - 1)[need - 1]
        sure = np.concatenate([sure, tied[tkids < ckid]])
        tied = tied[tkids == ckid]
        need = take - len(sure)
    s, c = t.score, t.n_children
    ranked = sorted(sure.tolist(), key=lambda i: (-s[i], c[i], ids[i]))
    if need > 0:
        ranked += heapq.nsmallest(need, tied.tolist(), key=ids.__getitem__)
    return ranked


def _pick_best(t: StatsTable, k: int, rng: np.random.Generator) -> np.ndarray:
    ranked = _rank_best(t, k)
    return np.array([ranked[i % len(ranked)] for i in range(k)], dtype=np.int64)


_HGM_CHUNK = 4_000_000  # Beta draws per batch, bounds memory when k × agents is large


def _pick_hgm_cmp(t: StatsTable, k: int, rng: np.random.Generator) -> np.ndarray:
    rows = t.eligible_rows
    solved, failed, _ = t.clade_totals
    a, b = 1.0 + solved[rows], 1.0 + failed[rows]
    per_batch = max(1, _HGM_CHUNK // len(rows))
    picks = []
    for start in range(0, k, per_batch):
        m = min(per_batch, k - start)
        theta = rng.beta(a, b, size=(m, len(rows)))
        picks.append(rows[np.argmax(theta, axis=1)])
    return np.concatenate(picks) if picks else rows[:0]


@dataclass(frozen=True)
class _Method:
    pick: Callable[[StatsTable, int, np.random.Generator], np.ndarray]
    doc: str


_METHODS: dict[str, _Method] = {
    "score_child_prop": _Method(
        _weighted_picker(_weights_score_child_prop),
        "DGM default: P ∝ sigmoid(10·(score−0.5)) / (1 + n_children)",
    ),
    "score_prop": _Method(_weighted_picker(_weights_score_prop), "P ∝ sigmoid(10·(score−0.5))"),
    "best": _Method(_pick_best, "top-k by score (ties: fewer children, then agent id); cycles if fewer"),
    "random": _Method(_pick_random, "uniform over eligible agents"),
    "hgm_cmp": _Method(_pick_hgm_cmp, "argmax of θ ~ Beta(1 + clade solved, 1 + clade failed)"),
    "novelty_share": _Method(
        _weighted_picker(_probabilities_novelty_share),
        "½ DGM score_child_prop + ½ implicit fitness sharing over solved tasks",
    ),
}


# ---------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------


def _method(method: str) -> _Method:
    try:
        return _METHODS[method]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_METHODS))
        raise SelectionError(f"unknown selection method {method!r} (known: {known})") from None


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SelectionError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.Generator(np.random.PCG64(int(seed)))


def _prepare(stats: Sequence[AgentStats] | StatsTable) -> StatsTable:
    table = StatsTable.from_stats(stats)
    if table.n == 0 or len(table.eligible_rows) == 0:
        raise SelectionError(
            f"no eligible agent to select a parent from ({table.n} agents, none eligible)"
        )
    return table


def select_parents(method: str, stats: Sequence[AgentStats] | StatsTable, k: int, seed: int) -> list[str]:
    """Choose `k` parent ids (with replacement) among the eligible agents.

    Deterministic for a given method, rows (in order), k and seed. Raises
    `SelectionError` (a `ValueError`) for an unknown method, no eligible
    agent, a negative k or seed, or malformed statistics.
    """
    m = _method(method)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise SelectionError(f"k must be a non-negative integer, got {k!r}")
    rng = _rng(seed)
    table = _prepare(stats)
    if k == 0:
        return []
    ids = table.agent_ids
    return [ids[i] for i in m.pick(table, int(k), rng).tolist()]


def _selector(name: str) -> Callable[[Sequence[AgentStats] | StatsTable, int, int], list[str]]:
    def select(stats: Sequence[AgentStats] | StatsTable, k: int, seed: int) -> list[str]:
        return select_parents(name, stats, k, seed)

    select.__name__ = select.__qualname__ = f"select_{name}"
    select.__doc__ = f"{_METHODS[name].doc}. Same contract as `select_parents`."
    return select


SELECTORS: dict[str, Callable[[Sequence[AgentStats] | StatsTable, int, int], list[str]]] = {
    name: _selector(name) for name in _METHODS
}
"""Selection method name -> selector(stats, k, seed) -> agent ids."""


# ---------------------------------------------------------------------------
# Explanations (for the UI and for replay reports)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentSelectionWeight:
    """Why one agent would (not) be picked."""

    agent_id: str
    eligible: bool
    weight: float
    """The method's unnormalised weight (hgm_cmp: posterior mean of the clade Beta; best: score)."""
    probability: float
    """Probability that a single draw picks this agent (best: 1 for the top agent)."""
    terms: Mapping[str, float]
    """The ingredients of the weight, by name."""


@dataclass(frozen=True)
class SelectionExplanation:
    method: str
    seed: int
    exact: bool
    """False when probabilities are Monte-Carlo estimates (hgm_cmp)."""
    n_samples: int | None
    agents: tuple[AgentSelectionWeight, ...]

    def probability(self, agent_id: str) -> float:
        for a in self.agents:
            if a.agent_id == agent_id:
                return a.probability
        raise KeyError(agent_id)

    def top(self, n: int = 10) -> list[AgentSelectionWeight]:
        return sorted(self.agents, key=lambda a: (-a.probability, a.agent_id))[:n]


def explain(
    method: str,
    stats: Sequence[AgentStats] | StatsTable,
    seed: int = 0,
    *,
    n_samples: int = 4000,
) -> SelectionExplanation:
    """Per-agent weights and single-draw probabilities of `method`.

    Exact for every method but ``hgm_cmp``, whose probability of being the
    argmax of independent Beta draws has no closed form: it is estimated from
    `n_samples` seeded Thompson draws (cost ∝ n_samples × eligible agents).
    """
    _method(method)
    rng = _rng(seed)
    t = _prepare(stats)
    n, ids, elig = t.n, t.agent_ids, t.eligible
    exact, samples = True, None
    terms: dict[str, np.ndarray] = {"score": t.score, "n_children": t.n_children.astype(np.float64)}
    if method in ("score_child_prop", "score_prop", "random", "novelty_share"):
        if method == "random":
            weight = _weights_random(t)
        else:
            terms["sigmoid"] = _sigmoid_score(t)
            if method == "score_prop":
                weight = _weights_score_prop(t)
            else:
                terms["child_penalty"] = _child_penalty(t)
                weight = _weights_score_child_prop(t)
            if method == "novelty_share":
                terms["task_share"] = _task_share(t)
                weight = _probabilities_novelty_share(t)
        prob = weight / weight.sum()
    elif method == "best":
        ranked = _rank_best(t, len(t.eligible_rows))
        rank = np.zeros(n)
        rank[ranked] = np.arange(1, len(ranked) + 1)
        terms["rank"] = rank
        weight = t.score * elig
        prob = np.zeros(n)
        prob[ranked[0]] = 1.0
    else:  # hgm_cmp
        solved, failed, size = t.clade_totals
        terms.update(clade_solved=solved, clade_failed=failed, clade_size=size)
        weight = (1.0 + solved) / (2.0 + solved + failed) * elig
        if n_samples < 1:
            raise SelectionError(f"n_samples must be positive, got {n_samples}")
        picks = _pick_hgm_cmp(t, n_samples, rng)
        prob = np.bincount(picks, minlength=n) / n_samples
        exact, samples = False, n_samples
    names = list(terms)
    columns = [terms[name].tolist() for name in names]
    rows = tuple(
        AgentSelectionWeight(
            agent_id=ids[i],
            eligible=bool(elig[i]),
            weight=float(weight[i]),
            probability=float(prob[i]),
            terms=dict(zip(names, (col[i] for col in columns))),
        )
        for i in range(n)
    )
    return SelectionExplanation(method=method, seed=int(seed), exact=exact, n_samples=samples, agents=rows)
