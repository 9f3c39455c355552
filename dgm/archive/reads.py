"""The reads the browsing commands are made of, each written once as SQL text.

`dgm ls`, `status` and `show` (and `agent_details`, which the explorer
shares) read an archive through `ArchiveReads`: the same method names and
arguments as `ArchiveStore`'s reads, returning plain records (records.py)
instead of ORM objects. Each statement is SQL text with `:name`
parameters, which both the standard library's sqlite3 module and
SQLAlchemy's `text()` accept, so one text serves two ways of running it:

- a read-only sqlite3 connection (readonly.py), for an SQLite archive at
  the current schema: no SQLAlchemy import at all, which is most of what
  such a command used to cost;
- an open `ArchiveStore`'s connection (`ArchiveQueries.fetch`), for
  everything else (PostgreSQL, an archive to migrate or to settle).

The grouped queries here are also what `ArchiveQueries` runs, so they exist
once. The single-row and list reads duplicate `ArchiveStore`'s ORM reads
(which writers need as ORM objects): tests/unit/test_archive_reads.py runs
both on one archive and asserts equal results, so they cannot drift apart.
Importing this module imports no SQL library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from dgm.archive.records import (AgentRecord, CampaignRecord, EventRecord, LineageRow, LLMCallRecord, Record,
                                 TaskRunRecord, has_own_code, one_by_prefix)
from dgm.errors import NotFound, UsageError
from dgm.ranking import IN_FLIGHT, best_key

Fetch = Callable[[str, Mapping[str, Any]], list[tuple[Any, ...]]]
"""Runs one read statement (SQL text, `:name` parameters) and returns its rows as plain tuples."""

_HEX_RE = re.compile(r"^[0-9a-f]+$")
_PREFIX_MATCHES = 6  # as many as an ambiguity error names (and one more, to say "...")
_IN_CHUNK = 500  # SQLite caps bound parameters per statement; IN lists go in slices


def _quoted(values: Sequence[str]) -> str:
    """dgm's own constant strings as an SQL list (never user input)."""
    return ", ".join(f"'{v}'" for v in values)


def _in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`(:name0, :name1, ...)` and its parameters."""
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join(f":{k}" for k in params) + ")", params


def _chunks(ids: Sequence[str] | None) -> Iterator[list[str]]:
    ids = list(ids or [])
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start:start + _IN_CHUNK]


# -- grouped queries: also ArchiveQueries' ----------------------------------------

_OVERVIEW_SQL = (
    # Best among agents whose evaluation is over, as every other view ranks (dgm.ranking).
    "SELECT campaign_id, count(*), sum(CASE WHEN status = 'admitted' THEN 1 ELSE 0 END), "
    f"max(CASE WHEN status NOT IN ({_quoted(IN_FLIGHT)}) THEN score END) FROM agents GROUP BY campaign_id")
_OVERVIEW_ELSEWHERE_SQL = (
    # Evaluations and replays of archived agents run agents of other campaigns: count those too.
    "SELECT task_runs.campaign_id, count(DISTINCT task_runs.agent_id) FROM task_runs "
    "JOIN agents ON agents.id = task_runs.agent_id "
    "WHERE agents.campaign_id != task_runs.campaign_id "
    "AND task_runs.campaign_id IN (SELECT id FROM campaigns WHERE kind IN ('eval', 'replay')) "
    "GROUP BY task_runs.campaign_id")


def campaign_overview(fetch: Fetch) -> dict[str, dict[str, Any]]:
    """campaign id -> {"agents": n, "admitted": n, "best_score": float | None}."""
    out = {cid: {"agents": n, "admitted": int(admitted or 0), "best_score": best}
           for cid, n, admitted, best in fetch(_OVERVIEW_SQL, {})}
    for cid, n in fetch(_OVERVIEW_ELSEWHERE_SQL, {}):
        entry = out.setdefault(cid, {"agents": 0, "admitted": 0, "best_score": None})
        entry["agents"] += n
    return out


_LINEAGE_COLUMNS = ("id, parent_id, generation, status, origin, score, heldout_score, stage_reached, commit_sha, "
                    "twin_of")


def lineage_rows(fetch: Fetch, campaign_id: str) -> list[LineageRow]:
    """Every agent of the campaign as light rows (no JSON columns), in generation then insertion order;
    for an eval or replay campaign, also the archived agents it ran (after its own)."""
    # Sorted here, not in SQL: a stable sort keeps the table's insertion
    # order within a generation and saves the database a temporary B-tree.
    rows = [LineageRow._make(row) for row in
            fetch(f"SELECT {_LINEAGE_COLUMNS} FROM agents WHERE campaign_id = :campaign_id", {"campaign_id": campaign_id})]
    rows.sort(key=lambda r: r.generation)
    kind = fetch("SELECT kind FROM campaigns WHERE id = :campaign_id", {"campaign_id": campaign_id})
    if kind and kind[0][0] in ("eval", "replay"):
        # An evaluation or replay of archived agents: those agents are what it is about.
        rows += agents_run_from_elsewhere(fetch, campaign_id)
    return rows


def agents_run_from_elsewhere(fetch: Fetch, campaign_id: str) -> list[LineageRow]:
    """Agents of other campaigns that this one ran (`dgm eval --agent ID`, a replay), as light rows."""
    sql = (f"SELECT {_LINEAGE_COLUMNS} FROM agents WHERE id IN "
           "(SELECT DISTINCT agent_id FROM task_runs WHERE campaign_id = :campaign_id) "
           "AND campaign_id != :campaign_id")
    return sorted((LineageRow._make(row) for row in fetch(sql, {"campaign_id": campaign_id})), key=lambda a: a.id)


def stage_results(fetch: Fetch, *, campaign_id: str | None = None,
                  agent_ids: Sequence[str] | None = None) -> dict[str, dict[str, tuple[int, int]]]:
    """agent id -> stage -> (resolved, finished) over its finished 'task' runs."""
    if campaign_id is None and agent_ids is None:
        raise TypeError("stage_results needs a campaign_id or agent_ids")
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for where, params in _scoped("task_runs", campaign_id, agent_ids):
        sql = ("SELECT agent_id, stage, sum(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END), count(*) "
               f"FROM task_runs WHERE kind = 'task' AND status != 'running'{where} GROUP BY agent_id, stage")
        for agent_id, stage, resolved, n in fetch(sql, params):
            out.setdefault(agent_id, {})[stage] = (int(resolved or 0), int(n))
    return out


ScoreCounts = dict[str, tuple[int, int]]
"""{"score": (resolved, runs), "heldout": (resolved, runs)}: the task runs behind an agent's two scores."""


def score_counts(fetch: Fetch, *, campaign_id: str | None = None,
                 agent_ids: Sequence[str] | None = None) -> dict[str, ScoreCounts]:
    """agent id -> the finished 'task' runs behind its score and its held-out score, counted in the
    agent's own campaign (where those scores were earned; its later evals and replays are not in them)."""
    if campaign_id is None and agent_ids is None:
        raise TypeError("score_counts needs a campaign_id or agent_ids")
    out: dict[str, ScoreCounts] = {}
    for where, params in _scoped("task_runs", campaign_id, agent_ids):
        sql = ("SELECT task_runs.agent_id, CASE WHEN task_runs.stage = 'heldout' THEN 'heldout' ELSE 'score' END, "
               "sum(CASE WHEN task_runs.status = 'resolved' THEN 1 ELSE 0 END), count(*) "
               "FROM task_runs JOIN agents ON agents.id = task_runs.agent_id "
               "AND agents.campaign_id = task_runs.campaign_id "
               f"WHERE task_runs.kind = 'task' AND task_runs.status != 'running'{where} "
               "GROUP BY task_runs.agent_id, CASE WHEN task_runs.stage = 'heldout' THEN 'heldout' ELSE 'score' END")
        for agent_id, which, resolved, n in fetch(sql, params):
            out.setdefault(agent_id, {})[which] = (int(resolved or 0), int(n))
    return out


def task_run_outcomes(fetch: Fetch, agent_ids: Sequence[str], *, campaign_id: str | None = None,
                      stages: Sequence[str] | None = None) -> dict[str, dict[str, list[bool]]]:
    """agent id -> task id -> whether each of its finished 'task' runs resolved it, oldest first
    (every run: repeats and later evaluations are samples too), for paired comparisons."""
    out: dict[str, dict[str, list[bool]]] = {}
    extra, extra_params = "", {}
    if stages is not None:
        listed, extra_params = _in_list("stage", list(stages))
        extra = f" AND task_runs.stage IN {listed}" if stages else " AND 1 = 0"
    for where, params in _scoped("task_runs", campaign_id, agent_ids):
        sql = ("SELECT agent_id, task_id, status FROM task_runs "
               f"WHERE kind = 'task' AND status != 'running'{where}{extra} ORDER BY finished_at, created_at, id")
        for agent_id, task_id, status in fetch(sql, {**params, **extra_params}):
            out.setdefault(agent_id, {}).setdefault(task_id, []).append(status == "resolved")
    return out


def best_agents(fetch: Fetch) -> dict[str, str]:
    """campaign id -> id of its best agent (dgm.ranking), among those whose evaluation is over."""
    sql = ("SELECT a.campaign_id, a.id, a.score, a.heldout_score, a.generation FROM agents a "
           f"WHERE a.status NOT IN ({_quoted(IN_FLIGHT)}) AND a.score = (SELECT max(b.score) FROM agents b "
           f"WHERE b.campaign_id = a.campaign_id AND b.status NOT IN ({_quoted(IN_FLIGHT)}))")
    best: dict[str, tuple] = {}
    for cid, aid, score, heldout, generation in fetch(sql, {}):
        key = best_key(score, heldout, generation, aid)
        if cid not in best or key < best[cid][0]:
            best[cid] = (key, aid)
    return {cid: aid for cid, (_, aid) in best.items()}


def agent_costs(fetch: Fetch, *, campaign_id: str | None = None,
                agent_ids: Sequence[str] | None = None) -> dict[str, float]:
    """agent id -> USD of all its recorded LLM calls (task runs, diagnosis, self-modification)."""
    if campaign_id is None and agent_ids is None:
        raise TypeError("agent_costs needs a campaign_id or agent_ids")
    out: dict[str, float] = {}
    for where, params in _scoped("llm_calls", campaign_id, agent_ids):
        sql = f"SELECT agent_id, sum(cost_usd) FROM llm_calls WHERE agent_id IS NOT NULL{where} GROUP BY agent_id"
        out.update({agent_id: float(cost or 0.0) for agent_id, cost in fetch(sql, params)})
    return out


def _scoped(table: str, campaign_id: str | None, agent_ids: Sequence[str] | None
            ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(extra WHERE conditions, their parameters) for one campaign and/or slices of agent ids."""
    where, params = "", {}
    if campaign_id is not None:
        where, params = f" AND {table}.campaign_id = :campaign_id", {"campaign_id": campaign_id}
    if agent_ids is None:
        yield where, params
        return
    for chunk in _chunks(agent_ids):
        listed, listed_params = _in_list("agent", chunk)
        yield f"{where} AND {table}.agent_id IN {listed}", {**params, **listed_params}


def rejections(fetch: Fetch, campaign_id: str, *, json_as_text: bool) -> dict[str, tuple[str | None, bool]]:
    """Rejected agent id -> (rejection reason, whether it has code of its own), for exports."""
    decode = AgentRecord.decoders(json_as_text)[AgentRecord.COLUMNS.index("meta")]
    sql = "SELECT id, rejection_reason, meta FROM agents WHERE campaign_id = :campaign_id AND status = 'rejected'"
    return {aid: (reason, has_own_code(decode(meta))) for aid, reason, meta in fetch(sql, {"campaign_id": campaign_id})}


UNPRICED_GROUPS = ("campaign_id", "agent_id", "task_run_id")


def unpriced_calls(fetch: Fetch, by: str, *, campaign_id: str | None = None) -> dict[str, int]:
    """`by` (campaign_id, agent_id or task_run_id) -> how many of its recorded calls had no
    known price (their cost is no price: views say `unpriced`, never `$0`); only those with some."""
    if by not in UNPRICED_GROUPS:
        raise ValueError(f"unpriced_calls groups by one of {UNPRICED_GROUPS}, not {by!r}")
    where, params = ("", {}) if campaign_id is None else (" AND campaign_id = :campaign_id",
                                                          {"campaign_id": campaign_id})
    sql = (f"SELECT {by}, count(*) FROM llm_calls WHERE priced = :no AND {by} IS NOT NULL{where} "
           f"GROUP BY {by}")
    return {key: int(n) for key, n in fetch(sql, {**params, "no": False})}


def twins_of(fetch: Fetch, agent_id: str) -> list[str]:
    """Ids of the agents recorded as twins of this one (same code tree), oldest first."""
    return [aid for (aid,) in fetch("SELECT id FROM agents WHERE twin_of = :agent_id ORDER BY created_at, id",
                                    {"agent_id": agent_id})]


def campaign_spend(fetch: Fetch, campaign_id: str) -> float:
    """Total cost of the campaign's recorded LLM calls (the source of truth for budgets)."""
    rows = fetch("SELECT coalesce(sum(cost_usd), 0.0) FROM llm_calls WHERE campaign_id = :campaign_id",
                 {"campaign_id": campaign_id})
    return float(rows[0][0])



def spend_by_purpose(fetch: Fetch, campaign_id: str) -> dict[str, dict[str, Any]]:
    """purpose (task | diagnose | self_modify | ...) -> {"calls", "prompt_tokens", "completion_tokens",
    "cost_usd", "errors", "unpriced_calls"} over the campaign's recorded LLM calls."""
    sql = ("SELECT purpose, count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), "
           "coalesce(sum(cost_usd), 0.0), sum(CASE WHEN status = 'ok' THEN 0 ELSE 1 END), "
           "sum(CASE WHEN priced = :no THEN 1 ELSE 0 END) "
           "FROM llm_calls WHERE campaign_id = :campaign_id GROUP BY purpose")
    return {purpose: {"calls": int(n), "prompt_tokens": int(p or 0), "completion_tokens": int(c or 0),
                      "cost_usd": float(cost or 0.0), "errors": int(errors or 0), "unpriced_calls": int(unpriced or 0)}
            for purpose, n, p, c, cost, errors, unpriced in fetch(sql, {"campaign_id": campaign_id, "no": False})}


# -- what earlier campaigns spent, per unit: the estimate's calibration ---------------


def run_call_figures(fetch: Fetch, *, kind: str, model: str, benchmark: str | None = None,
                     campaign_ids: Sequence[str] | None = None) -> list[tuple[int, int, int, float]]:
    """(calls, prompt tokens, completion tokens, USD) of each finished run of this kind and model
    (a task run, a self-modification), on `benchmark` and in `campaign_ids` when given."""
    where, params = "", {"kind": kind, "model": model}
    if benchmark is not None:
        where, params["benchmark"] = " AND task_runs.benchmark = :benchmark", benchmark
    out: list[tuple[int, int, int, float]] = []
    for scope, scope_params in _scoped_campaigns("task_runs", campaign_ids):
        sql = ("SELECT count(llm_calls.id), coalesce(sum(llm_calls.prompt_tokens), 0), "
               "coalesce(sum(llm_calls.completion_tokens), 0), coalesce(sum(llm_calls.cost_usd), 0.0) "
               "FROM task_runs LEFT JOIN llm_calls ON llm_calls.task_run_id = task_runs.id "
               f"WHERE task_runs.kind = :kind AND task_runs.model = :model AND task_runs.status != 'running'"
               f"{where}{scope} GROUP BY task_runs.id")
        out += [(int(n), int(p), int(c), float(cost)) for n, p, c, cost in fetch(sql, {**params, **scope_params})]
    return out


def agent_call_figures(fetch: Fetch, *, purpose: str, model: str, campaign_ids: Sequence[str]
                       ) -> list[tuple[int, int, int, float]]:
    """(calls, prompt tokens, completion tokens, USD) of each agent's calls of this purpose and model
    in `campaign_ids` (a child's diagnosis, say)."""
    out: list[tuple[int, int, int, float]] = []
    for scope, scope_params in _scoped_campaigns("llm_calls", campaign_ids):
        sql = ("SELECT count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), "
               "coalesce(sum(cost_usd), 0.0) FROM llm_calls "
               f"WHERE purpose = :purpose AND model = :model AND agent_id IS NOT NULL{scope} GROUP BY agent_id")
        out += [(int(n), int(p), int(c), float(cost))
                for n, p, c, cost in fetch(sql, {"purpose": purpose, "model": model, **scope_params})]
    return out


def child_outcomes(fetch: Fetch, campaign_ids: Sequence[str]) -> dict[str, Any]:
    """How the finished children of `campaign_ids` went: {"stage_reached": {stage (0 = never
    evaluated, twins included): children}, "heldout_scored": children scored on held-out tasks, "generations":
    generations finished after the seed's}."""
    reached: dict[int, int] = {}
    scored = generations = 0
    for scope, params in _scoped_campaigns("agents", campaign_ids):
        sql = ("SELECT coalesce(stage_reached, 0), sum(CASE WHEN heldout_score IS NULL THEN 0 ELSE 1 END), "
               "count(*) FROM agents WHERE origin = 'child' AND status IN ('admitted', 'rejected', 'twin')"
               f"{scope} GROUP BY coalesce(stage_reached, 0)")
        for stage, held, n in fetch(sql, params):
            reached[int(stage)] = reached.get(int(stage), 0) + int(n)
            scored += int(held or 0)
        gen_scope = scope.replace("agents.", "generation_stats.")
        rows = fetch(f"SELECT count(*) FROM generation_stats WHERE generation >= 1{gen_scope}", params)
        generations += int(rows[0][0])
    return {"stage_reached": reached, "heldout_scored": scored, "generations": generations}


def _scoped_campaigns(table: str, campaign_ids: Sequence[str] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(an `AND table.campaign_id IN (...)` condition, its parameters) per slice of ids; no condition for None."""
    if campaign_ids is None:
        yield "", {}
        return
    for chunk in _chunks(campaign_ids):
        listed, params = _in_list("campaign", chunk)
        yield f" AND {table}.campaign_id IN {listed}", params

# -- ArchiveReads: the browsing face of an archive -----------------------------------


class ArchiveReads:
    """The reads of browsing over one archive, through `fetch` (see the module's docstring).

    `json_as_text`: the database hands JSON columns back as text (SQLite).
    `code` is the archive's agent code store; `close` releases what `fetch` uses.
    """

    def __init__(self, fetch: Fetch, *, json_as_text: bool, url: str, root: Path, code: Any,
                 close: Callable[[], None] | None = None):
        self.fetch = fetch
        self.url = url
        """The database URL with any password masked."""
        self.root = root
        self.code = code
        self._json_as_text = json_as_text
        self._close = close
        self._decoders: dict[type[Record], tuple[Any, ...]] = {}

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> ArchiveReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _records(self, cls: type[Record], where: str = "", order_by: str = "", params: Mapping[str, Any] = {}
                 ) -> list[Any]:
        decoders = self._decoders.get(cls)
        if decoders is None:
            decoders = self._decoders[cls] = cls.decoders(self._json_as_text)
        return [cls.from_row(row, decoders) for row in self.fetch(cls.select(where, order_by), params)]

    def _resolve(self, cls: type[Record], id_or_prefix: str, label: str) -> Any:
        """By exact id, else by unique id prefix (as the store's `_resolve`)."""
        found = self._records(cls, "id = :id", params={"id": id_or_prefix})
        if found:
            return found[0]
        return one_by_prefix(self._by_prefix(cls, id_or_prefix), id_or_prefix, label)

    def _by_prefix(self, cls: type[Record], prefix: str) -> list[Any]:
        # Ids are hex; anything else cannot be a prefix and must not reach LIKE unescaped.
        if not prefix or not _HEX_RE.match(prefix):
            return []
        return self._records(cls, "id LIKE :prefix || '%'", f"id LIMIT {_PREFIX_MATCHES}", {"prefix": prefix})

    # -- campaigns -----------------------------------------------------------------

    def get_campaign(self, id_or_name: str) -> CampaignRecord:
        """By exact id, exact name, or unique id prefix."""
        found = (self._records(CampaignRecord, "id = :ref", params={"ref": id_or_name})
                 or self._records(CampaignRecord, "name = :ref", params={"ref": id_or_name}))
        if found:
            return found[0]
        matches = self._by_prefix(CampaignRecord, id_or_name)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"campaign id prefix {id_or_name!r} is ambiguous: {', '.join(m.id for m in matches)}")
        known = [name for (name,) in self.fetch("SELECT name FROM campaigns ORDER BY created_at DESC LIMIT 5", {})]
        hint = f" (recent: {', '.join(known)})" if known else " (the archive has no campaigns yet)"
        raise NotFound(f"no campaign with id or name {id_or_name!r}{hint}")

    def list_campaigns(self) -> list[CampaignRecord]:
        return self._records(CampaignRecord, order_by="created_at, id")

    def campaign_spend(self, campaign_id: str) -> float:
        return campaign_spend(self.fetch, campaign_id)

    def campaign_overview(self) -> dict[str, dict[str, Any]]:
        return campaign_overview(self.fetch)

    def spend_by_purpose(self, campaign_id: str) -> dict[str, dict[str, Any]]:
        return spend_by_purpose(self.fetch, campaign_id)

    def unpriced_calls(self, by: str, *, campaign_id: str | None = None) -> dict[str, int]:
        return unpriced_calls(self.fetch, by, campaign_id=campaign_id)

    # -- agents --------------------------------------------------------------------

    def get_agent(self, id_or_prefix: str) -> AgentRecord:
        return self._resolve(AgentRecord, id_or_prefix, "agent")

    def list_agents(self, campaign_id: str) -> list[AgentRecord]:
        return self._records(AgentRecord, "campaign_id = :campaign_id", "generation, created_at, id",
                             {"campaign_id": campaign_id})

    def children_of(self, agent_id: str) -> list[AgentRecord]:
        return self._records(AgentRecord, "parent_id = :agent_id", "created_at, id", {"agent_id": agent_id})

    def lineage_rows(self, campaign_id: str) -> list[LineageRow]:
        return lineage_rows(self.fetch, campaign_id)

    def twins_of(self, agent_id: str) -> list[str]:
        return twins_of(self.fetch, agent_id)

    def stage_results(self, *, campaign_id: str | None = None,
                      agent_ids: Sequence[str] | None = None) -> dict[str, dict[str, tuple[int, int]]]:
        return stage_results(self.fetch, campaign_id=campaign_id, agent_ids=agent_ids)

    def score_counts(self, *, campaign_id: str | None = None, agent_ids: Sequence[str] | None = None
                     ) -> dict[str, ScoreCounts]:
        return score_counts(self.fetch, campaign_id=campaign_id, agent_ids=agent_ids)

    def best_agents(self) -> dict[str, str]:
        return best_agents(self.fetch)

    def task_run_outcomes(self, agent_ids: Sequence[str], *, campaign_id: str | None = None,
                          stages: Sequence[str] | None = None) -> dict[str, dict[str, list[bool]]]:
        return task_run_outcomes(self.fetch, agent_ids, campaign_id=campaign_id, stages=stages)

    def agent_costs(self, *, campaign_id: str | None = None, agent_ids: Sequence[str] | None = None
                    ) -> dict[str, float]:
        return agent_costs(self.fetch, campaign_id=campaign_id, agent_ids=agent_ids)

    def rejections(self, campaign_id: str) -> dict[str, tuple[str | None, bool]]:
        return rejections(self.fetch, campaign_id, json_as_text=self._json_as_text)

    # -- task runs, LLM calls, events -------------------------------------------------

    def list_task_runs(self, agent_id: str | None = None, campaign_id: str | None = None,
                       kind: str | None = None) -> list[TaskRunRecord]:
        where, params = _equal(agent_id=agent_id, campaign_id=campaign_id, kind=kind)
        return self._records(TaskRunRecord, where, "created_at, id", params)

    def list_llm_calls(self, task_run_id: str | None = None, *, agent_id: str | None = None) -> list[LLMCallRecord]:
        """Matching calls in replay order (seq, then time)."""
        where, params = _equal(task_run_id=task_run_id, agent_id=agent_id)
        return self._records(LLMCallRecord, where, "seq, created_at, id", params)

    def list_events(self, campaign_id: str) -> list[EventRecord]:
        """The campaign's events in id order."""
        return self._records(EventRecord, "campaign_id = :campaign_id", "id", {"campaign_id": campaign_id})


def _equal(**filters: Any) -> tuple[str, dict[str, Any]]:
    """`a = :a AND b = :b` for the filters that are not None."""
    given = {k: v for k, v in filters.items() if v is not None}
    return " AND ".join(f"{k} = :{k}" for k in given), given


if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore

# What a read-only view can be handed: the light reads, or the store itself
# (PostgreSQL, an archive that needs migrating, or a caller that also writes).
ArchiveReader = Union[ArchiveReads, "ArchiveStore"]
