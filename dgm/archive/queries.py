"""Read-model queries: whole-campaign reads for listings, lineage and the explorer.

`ArchiveQueries` owns the read side of an archive's database: its read
sessions and the grouped queries browsing is made of. Each query is one
grouped statement, never one per agent: a campaign can hold 100,000 agents
with 50 runs each, and `dgm lineage` must stay interactive. `ArchiveStore`
(store.py) builds on it and adds every write; reads here never write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dgm.archive.database import translate_db_errors
from dgm.archive.models import Agent, Campaign, LLMCall, TaskRun, has_own_code
from dgm.errors import NotFound
from dgm.ranking import IN_FLIGHT


class LineageRow(NamedTuple):
    id: str
    parent_id: str | None
    generation: int
    status: str
    origin: str
    score: float | None
    heldout_score: float | None
    stage_reached: int
    commit_sha: str


def _lineage_select() -> sa.Select[Any]:
    """The agent columns of a `LineageRow`, in its order."""
    t = Agent.__table__.c
    return sa.select(t.id, t.parent_id, t.generation, t.status, t.origin, t.score, t.heldout_score,
                     t.stage_reached, t.commit_sha)


class ArchiveQueries:
    """The read sessions of one archive database, and the grouped queries over it."""

    def __init__(self, engine: sa.Engine, url: str):
        self.engine = engine
        self.url = url
        """The database URL with any password masked."""
        self._read_session = sessionmaker(engine, expire_on_commit=False)

    def campaign_overview(self) -> dict[str, dict[str, Any]]:
        """campaign id -> {"agents": n, "admitted": n, "best_score": float | None}."""
        # Best among agents whose evaluation is over, as every other view ranks (dgm.ranking).
        query = select(
            Agent.campaign_id, func.count(), func.sum(sa.case((Agent.status == "admitted", 1), else_=0)),
            func.max(sa.case((Agent.status.not_in(IN_FLIGHT), Agent.score))),
        ).group_by(Agent.campaign_id)
        # Evaluations and replays of archived agents run agents of other campaigns: count those too.
        elsewhere = (
            select(TaskRun.campaign_id, func.count(sa.distinct(TaskRun.agent_id)))
            .join(Agent, Agent.id == TaskRun.agent_id)
            .where(Agent.campaign_id != TaskRun.campaign_id,
                   TaskRun.campaign_id.in_(select(Campaign.id).where(Campaign.kind.in_(("eval", "replay")))))
            .group_by(TaskRun.campaign_id)
        )
        with self._read() as s:
            out = {cid: {"agents": n, "admitted": int(admitted or 0), "best_score": best}
                   for cid, n, admitted, best in s.execute(query)}
            for cid, n in s.execute(elsewhere):
                entry = out.setdefault(cid, {"agents": 0, "admitted": 0, "best_score": None})
                entry["agents"] += n
            return out

    def rejections(self, campaign_id: str) -> dict[str, tuple[str | None, bool]]:
        """Rejected agent id -> (rejection reason, whether it has code of its own), for exports."""
        query = select(Agent.id, Agent.rejection_reason, Agent.meta).where(
            Agent.campaign_id == campaign_id, Agent.status == "rejected")
        with self._read() as s:
            return {aid: (reason, has_own_code(meta)) for aid, reason, meta in s.execute(query)}

    def lineage_rows(self, campaign_id: str) -> list[LineageRow]:
        """Every agent of the campaign as light rows (no JSON columns), in generation then insertion order;
        for an eval or replay campaign, also the archived agents it ran (after its own).

        Fields: id, parent_id, generation, status, origin, score, heldout_score,
        stage_reached, commit_sha.
        """
        # No datetimes (converting 100,000 costs more than the query), and the
        # rows come from the DBAPI cursor: SQLAlchemy's Row objects cost more
        # than SQLite itself here.
        t = Agent.__table__.c
        query = _lineage_select().where(t.campaign_id == campaign_id)
        # Sorted here, not in SQL: a stable sort keeps the table's insertion
        # order within a generation and saves the database a temporary B-tree.
        rows = [LineageRow._make(row) for row in self._fetch_raw(query)]
        rows.sort(key=lambda r: r.generation)
        with self._read() as s:
            kind = s.scalar(select(Campaign.kind).where(Campaign.id == campaign_id))
        if kind in ("eval", "replay"):
            # An evaluation or replay of archived agents: those agents are what it is about.
            rows += self.agents_run_from_elsewhere(campaign_id)
        return rows

    def agents_run_from_elsewhere(self, campaign_id: str) -> list[LineageRow]:
        """Agents of other campaigns that this one ran (`dgm eval --agent ID`, a replay), as light rows."""
        t, r = Agent.__table__.c, TaskRun.__table__.c
        ran = sa.select(r.agent_id).where(r.campaign_id == campaign_id).distinct()
        query = _lineage_select().where(t.id.in_(ran), t.campaign_id != campaign_id)
        return sorted((LineageRow._make(row) for row in self._fetch_raw(query)), key=lambda a: a.id)

    def _fetch_raw(self, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
        """All rows of a Core query as plain DBAPI tuples (only for columns without type processing)."""
        with self._read_conn() as conn:
            compiled = query.compile(dialect=conn.dialect)
            params = compiled.construct_params()
            args: Any = tuple(params[k] for k in compiled.positiontup) if compiled.positional else params
            cursor = conn.connection.cursor()
            try:
                cursor.execute(str(compiled), args)
                return cursor.fetchall()
            finally:
                cursor.close()

    def children_of(self, agent_id: str) -> list[Agent]:
        with self._read() as s:
            return list(s.scalars(select(Agent).where(Agent.parent_id == agent_id).order_by(Agent.created_at, Agent.id)))

    def task_run_counts(self, campaign_id: str, kind: str = "task") -> dict[str, int]:
        """agent id -> number of its task runs of this kind in the campaign."""
        t = TaskRun.__table__.c
        query = (sa.select(t.agent_id, func.count())
                 .where(t.campaign_id == campaign_id, t.kind == kind).group_by(t.agent_id))
        with self._read_conn() as conn:
            return dict(conn.execute(query).all())

    def stage_results(self, *, campaign_id: str | None = None,
                      agent_ids: Sequence[str] | None = None) -> dict[str, dict[str, tuple[int, int]]]:
        """agent id -> stage -> (resolved, finished) over its finished 'task' runs."""
        if campaign_id is None and agent_ids is None:
            raise TypeError("stage_results needs a campaign_id or agent_ids")
        query = select(
            TaskRun.agent_id, TaskRun.stage, func.sum(sa.case((TaskRun.status == "resolved", 1), else_=0)), func.count(),
        ).where(TaskRun.kind == "task", TaskRun.status != "running").group_by(TaskRun.agent_id, TaskRun.stage)
        if campaign_id is not None:
            query = query.where(TaskRun.campaign_id == campaign_id)
        out: dict[str, dict[str, tuple[int, int]]] = {}
        with self._read() as s:
            for chunk in _chunks(agent_ids) if agent_ids is not None else [None]:
                q = query if chunk is None else query.where(TaskRun.agent_id.in_(chunk))
                for agent_id, stage, resolved, n in s.execute(q):
                    out.setdefault(agent_id, {})[stage] = (int(resolved or 0), int(n))
        return out

    def agent_costs(self, *, campaign_id: str | None = None,
                    agent_ids: Sequence[str] | None = None) -> dict[str, float]:
        """agent id -> USD of all its recorded LLM calls (task runs, diagnosis, self-modification)."""
        if campaign_id is None and agent_ids is None:
            raise TypeError("agent_costs needs a campaign_id or agent_ids")
        query = select(LLMCall.agent_id, func.sum(LLMCall.cost_usd)).where(LLMCall.agent_id.is_not(None)) \
            .group_by(LLMCall.agent_id)
        if campaign_id is not None:
            query = query.where(LLMCall.campaign_id == campaign_id)
        out: dict[str, float] = {}
        with self._read() as s:
            for chunk in _chunks(agent_ids) if agent_ids is not None else [None]:
                q = query if chunk is None else query.where(LLMCall.agent_id.in_(chunk))
                out.update({agent_id: float(cost or 0.0) for agent_id, cost in s.execute(q)})
        return out

    def task_status_matrix(self, agent_ids: Sequence[str], kind: str = "task") -> dict[str, dict[str, str]]:
        """agent id -> task id -> status of its latest finished run of that kind (any stage)."""
        query = (select(TaskRun.agent_id, TaskRun.task_id, TaskRun.status)
                 .where(TaskRun.kind == kind, TaskRun.status != "running")
                 .order_by(TaskRun.finished_at, TaskRun.created_at, TaskRun.id))
        out: dict[str, dict[str, str]] = {}
        with self._read() as s:
            for chunk in _chunks(agent_ids):
                for agent_id, task_id, status in s.execute(query.where(TaskRun.agent_id.in_(chunk))):
                    out.setdefault(agent_id, {})[task_id] = status  # later rows win
        return out

    def latest_finished_run(self, agent_id: str, task_id: str, kinds: Iterable[str] = ("task",),
                            benchmark: str | None = None) -> TaskRun | None:
        """The agent's most recently finished run on the task (None if it never ran it)."""
        query = (select(TaskRun).where(TaskRun.agent_id == agent_id, TaskRun.task_id == task_id,
                                       TaskRun.kind.in_(list(kinds)), TaskRun.status != "running")
                 .order_by(TaskRun.finished_at.desc(), TaskRun.created_at.desc(), TaskRun.id.desc()).limit(1))
        if benchmark is not None:
            query = query.where(TaskRun.benchmark == benchmark)
        with self._read() as s:
            return s.scalar(query)

    def campaign_fingerprint(self, campaign_id: str) -> str:
        """A short string that changes whenever the campaign's agents or runs change (for live refresh).

        Counting a running campaign's task runs is an index-only scan; a
        finished campaign skips it, since nothing writes to it any more.
        """
        with self._read() as s:
            campaign = s.get(Campaign, campaign_id)
            if campaign is None:
                raise NotFound(f"no campaign {campaign_id!r}")
            n_agents, last_update = s.execute(
                select(func.count(), func.max(Agent.updated_at)).where(Agent.campaign_id == campaign_id)).one()
            n_runs = -1
            if campaign.status == "running":
                n_runs = s.scalar(select(func.count()).select_from(TaskRun).where(TaskRun.campaign_id == campaign_id))
        parts = [campaign.status, str(campaign.updated_at), f"{campaign.spent_usd:.6f}", str(n_agents),
                 str(last_update), str(n_runs)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    # -- sessions ------------------------------------------------------------

    @contextmanager
    def _read_conn(self) -> Iterator[sa.Connection]:
        with translate_db_errors(self.url), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with translate_db_errors(self.url), self._read_session() as s, s.begin():
            yield s


def _chunks(ids: Sequence[str] | None, size: int = 500) -> Iterator[list[str]]:
    # SQLite caps bound parameters per statement; IN lists go in slices.
    ids = list(ids or [])
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


