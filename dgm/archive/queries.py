"""Read-model queries: whole-campaign reads for listings, lineage and the explorer.

`ArchiveQueries` owns the read side of an archive's database: its read
sessions and the grouped queries browsing is made of (those the browsing
commands share are SQL text in reads.py, which also runs them without
SQLAlchemy on an SQLite archive; `fetch` runs them here). Each query is one
grouped statement, never one per agent: a campaign can hold 100,000 agents
with 50 runs each, and `dgm lineage` must stay interactive. `ArchiveStore`
(store.py) builds on it and adds every write; reads here never write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dgm.archive import reads
from dgm.archive.database import translate_db_errors
from dgm.archive.models import Agent, Campaign, TaskRun
from dgm.archive.records import LineageRow
from dgm.errors import NotFound


class ArchiveQueries:
    """The read sessions of one archive database, and the grouped queries over it."""

    def __init__(self, engine: sa.Engine, url: str):
        self.engine = engine
        self.url = url
        """The database URL with any password masked."""
        self._read_session = sessionmaker(engine, expire_on_commit=False)

    # The grouped queries browsing shares are SQL text in reads.py, run here
    # through this archive's connection (and by `dgm ls` without SQLAlchemy).

    def campaign_overview(self) -> dict[str, dict[str, Any]]:
        """campaign id -> {"agents": n, "admitted": n, "best_score": float | None}."""
        return reads.campaign_overview(self.fetch)

    def rejections(self, campaign_id: str) -> dict[str, tuple[str | None, bool]]:
        """Rejected agent id -> (rejection reason, whether it has code of its own), for exports."""
        return reads.rejections(self.fetch, campaign_id, json_as_text=self.engine.dialect.name == "sqlite")

    def spend_by_purpose(self, campaign_id: str) -> dict[str, dict[str, Any]]:
        """purpose (task | diagnose | self_modify) -> calls, tokens, USD and errors of the campaign's LLM calls."""
        return reads.spend_by_purpose(self.fetch, campaign_id)

    def lineage_rows(self, campaign_id: str) -> list[LineageRow]:
        """Every agent of the campaign as light rows (no JSON columns), in generation then insertion order;
        for an eval or replay campaign, also the archived agents it ran (after its own).

        Fields: id, parent_id, generation, status, origin, score, heldout_score,
        stage_reached, commit_sha, twin_of.
        """
        return reads.lineage_rows(self.fetch, campaign_id)

    def twins_of(self, agent_id: str) -> list[str]:
        """Ids of the agents recorded as twins of this one (same code tree), oldest first."""
        return reads.twins_of(self.fetch, agent_id)

    def agents_run_from_elsewhere(self, campaign_id: str) -> list[LineageRow]:
        """Agents of other campaigns that this one ran (`dgm eval --agent ID`, a replay), as light rows."""
        return reads.agents_run_from_elsewhere(self.fetch, campaign_id)

    def fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """All rows of one read statement (SQL text, `:name` parameters) as plain DBAPI tuples:
        no datetime or JSON decoding (records.py does that), and no SQLAlchemy Row objects,
        which cost more than SQLite itself on a 100,000-agent campaign."""
        with self._read_conn() as conn:
            compiled = sa.text(sql).compile(dialect=conn.dialect)
            values = compiled.construct_params(dict(params))
            args: Any = tuple(values[k] for k in compiled.positiontup) if compiled.positional else values
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
        return reads.stage_results(self.fetch, campaign_id=campaign_id, agent_ids=agent_ids)

    def score_counts(self, *, campaign_id: str | None = None,
                     agent_ids: Sequence[str] | None = None) -> dict[str, reads.ScoreCounts]:
        """agent id -> {"score": (resolved, runs), "heldout": (resolved, runs)} in its own campaign."""
        return reads.score_counts(self.fetch, campaign_id=campaign_id, agent_ids=agent_ids)

    def best_agents(self) -> dict[str, str]:
        """campaign id -> id of its best agent among those whose evaluation is over."""
        return reads.best_agents(self.fetch)

    def task_run_outcomes(self, agent_ids: Sequence[str], *, campaign_id: str | None = None,
                          stages: Sequence[str] | None = None) -> dict[str, dict[str, list[bool]]]:
        """agent id -> task id -> resolved? of each finished 'task' run, oldest first (paired comparisons)."""
        return reads.task_run_outcomes(self.fetch, agent_ids, campaign_id=campaign_id, stages=stages)

    def agent_costs(self, *, campaign_id: str | None = None,
                    agent_ids: Sequence[str] | None = None) -> dict[str, float]:
        """agent id -> USD of all its recorded LLM calls (task runs, diagnosis, self-modification)."""
        return reads.agent_costs(self.fetch, campaign_id=campaign_id, agent_ids=agent_ids)

    def unpriced_calls(self, by: str, *, campaign_id: str | None = None) -> dict[str, int]:
        """campaign, agent or task run id -> its recorded calls that had no known price (only those with some)."""
        return reads.unpriced_calls(self.fetch, by, campaign_id=campaign_id)

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


