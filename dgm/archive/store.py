"""ArchiveStore: the only code that writes archive rows.

Every public method opens its own session and, when it writes, commits
everything it does in ONE transaction, so a crash leaves either the whole step
or none of it. Methods return detached, fully loaded ORM objects (reading their
attributes never touches the database again), which makes the store safe to
share between threads.

Write transactions take SQLite's write lock up front (see database.py), so
read-then-write steps cannot race with another process. On PostgreSQL the
same steps rely on the unique constraints and retry once on a conflicting
insert. Opening and migrating the database is database.py's; which directory
holds the code and artifacts, identity.py's; the grouped read-model queries
browsing uses, queries.py's (the base class).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dgm.archive import reads
from dgm.archive.artifacts import ArtifactStore, canonical_json
from dgm.archive.code import AgentCodeStore
from dgm.archive.database import open_database, short_error, translate_db_errors
from dgm.archive.models import (
    AGENT_ORIGINS,
    AGENT_STATUSES,
    CAMPAIGN_KINDS,
    CAMPAIGN_STATUSES,
    LLM_CALL_STATUSES,
    LLM_PURPOSES,
    TASK_RUN_FINISHED_STATUSES,
    TASK_RUN_KINDS,
    TASK_RUN_STATUSES,
    Agent,
    Base,
    Campaign,
    Event,
    GenerationStat,
    LLMCall,
    TaskRun,
    utcnow,
)
from dgm.archive.queries import ArchiveQueries, LineageRow
from dgm.archive.records import has_own_code, one_by_prefix
from dgm.errors import ArchiveUnavailable, NotFound, UsageError

__all__ = ["AGENT_UPDATABLE", "ArchiveStore", "LineageRow", "llm_request_hash", "new_id"]

_M = TypeVar("_M", bound=Base)
_HEX_RE = re.compile(r"^[0-9a-f]+$")
_BULK_CHUNK = 5_000

AGENT_UPDATABLE = frozenset(
    {"status", "rejection_reason", "proposal", "diagnosis_target", "score", "heldout_score",
     "stage_reached", "meta", "generation", "parent_id", "commit_sha"}
)


def llm_request_hash(model: str, messages: Sequence[Any], params: dict[str, Any] | None = None) -> str:
    """sha256 of the canonical JSON request; equal requests give equal hashes across runs."""
    return hashlib.sha256(canonical_json({"model": model, "messages": list(messages), "params": params or {}})).hexdigest()


def new_id(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


class ArchiveStore(ArchiveQueries):
    """SQL rows + agent code (`.code`) + blobs (`.artifacts`) under one root directory."""

    def __init__(self, engine: sa.Engine, root: Path, url: str):
        super().__init__(engine, url)
        self.root = root
        self.code = AgentCodeStore(root / "agents.git")
        self.artifacts = ArtifactStore(root / "artifacts")
        # Same pool; the option tells the SQLite 'begin' hook to take the write lock up front.
        self._write_session = sessionmaker(engine.execution_options(dgm_write=True), expire_on_commit=False)

    # -- opening -----------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None, root: Path | str = "archive", *, create: bool = True,
             root_given: bool = True) -> ArchiveStore:
        """Open (creating and migrating if needed) the archive; ArchiveUnavailable if impossible.

        `create=False`: an archive that is not there is NotFound, not a new one;
        `root_given=False`: a database URL's archive uses the directory it
        recorded (database.open_database says more).
        """
        engine, root, shown = open_database(url, root, create=create, root_given=root_given)
        return cls(engine, root, shown)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ArchiveStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ArchiveStore({self.url!r}, root={str(self.root)!r})"

    # -- campaigns ---------------------------------------------------------

    def create_campaign(
        self, name: str, kind: str, config: dict[str, Any], seed: int | None = None, budget_usd: float | None = None,
    ) -> Campaign:
        _check("campaign kind", kind, CAMPAIGN_KINDS)
        if not name or not name.strip():
            raise UsageError("a campaign needs a non-empty name")
        campaign = Campaign(
            id=new_id(4), name=name, kind=kind, status="running", config=config or {}, seed=seed,
            budget_usd=budget_usd, spent_usd=0.0, pid=os.getpid(), runner_host=socket.gethostname(),
            heartbeat_at=utcnow(),
        )
        duplicate = UsageError(f"a campaign named {name!r} already exists (choose another name, or resume it)")
        try:
            with self._write() as s:
                if s.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
                    raise duplicate
                s.add(campaign)
        except IntegrityError:  # PostgreSQL: another process created it between our check and insert
            raise duplicate from None
        return campaign

    def get_campaign(self, id_or_name: str) -> Campaign:
        """By exact id, exact name, or unique id prefix."""
        with self._read() as s:
            found = s.get(Campaign, id_or_name) or s.scalar(select(Campaign).where(Campaign.name == id_or_name))
            if found is not None:
                return found
            matches = _by_prefix(s, Campaign, id_or_name)
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise UsageError(f"campaign id prefix {id_or_name!r} is ambiguous: {', '.join(m.id for m in matches)}")
            known = s.scalars(select(Campaign.name).order_by(Campaign.created_at.desc()).limit(5)).all()
        hint = f" (recent: {', '.join(known)})" if known else " (the archive has no campaigns yet)"
        raise NotFound(f"no campaign with id or name {id_or_name!r}{hint}")

    def list_campaigns(self) -> list[Campaign]:
        with self._read() as s:
            return list(s.scalars(select(Campaign).order_by(Campaign.created_at, Campaign.id)))

    def set_campaign_status(self, campaign_id: str, status: str, finished: bool = False) -> Campaign:
        _check("campaign status", status, CAMPAIGN_STATUSES)
        with self._write() as s:
            campaign = _get(s, Campaign, campaign_id, "campaign")
            campaign.status = status
            campaign.updated_at = utcnow()
            campaign.finished_at = utcnow() if finished else None
        return campaign

    def close_campaign(self, campaign_id: str, status: str, *, unfinished_error: str) -> int:
        """End a run that is not resumed (an eval, a replay) cut short: its task
        runs still 'running' become errors saying why, and the campaign takes
        `status`. Returns how many runs were cut."""
        cut = self.list_task_runs(campaign_id=campaign_id, status="running")
        for run in cut:
            self.finish_task_run(run.id, status="error", error=unfinished_error)
        self.set_campaign_status(campaign_id, status, finished=True)
        return len(cut)

    def discard_import(self, campaign_id: str) -> None:
        """Remove an import campaign that failed part way, with its agents, task
        runs and events, and the refs that keep its agents' code. An import is
        not resumed: half of one would only hold its name. Other kinds of
        campaign are never removed (their spend and runs are the record)."""
        with self._write() as s:
            campaign = _get(s, Campaign, campaign_id, "campaign")
            if campaign.kind != "import":
                raise UsageError(f"campaign {campaign.name} is a{'n' if campaign.kind[0] in 'aeiou' else ''} "
                                 f"{campaign.kind} campaign; only a failed import is discarded")
            agent_ids = list(s.scalars(select(Agent.id).where(Agent.campaign_id == campaign_id)))
            for model in (Event, TaskRun, LLMCall, GenerationStat, Agent):  # what points at agents first
                s.execute(sa.delete(model).where(model.campaign_id == campaign_id))
            s.delete(campaign)
        for agent_id in agent_ids:
            self.code.drop_ref(agent_id)

    def update_campaign(self, campaign_id: str, *, config: dict | None = None,
                        budget_usd: float | None = None) -> Campaign:
        """Change a campaign's config snapshot / budget (e.g. `dgm resume --budget-usd`)."""
        with self._write() as s:
            campaign = _get(s, Campaign, campaign_id, "campaign")
            if config is not None:
                campaign.config = config
            if budget_usd is not None:
                campaign.budget_usd = budget_usd
            campaign.updated_at = utcnow()
            return campaign

    def claim_runner(self, campaign_id: str, seen) -> bool:
        """Make this process the campaign's runner (status running, its pid,
        a fresh heartbeat) unless another process claimed it after `seen` (the
        campaign as read) was read: a compare-and-set on the runner fields, so
        of two `dgm resume`s started at once exactly one runs the campaign."""
        def unchanged(column, value):
            return column.is_(None) if value is None else column == value

        now = utcnow()
        with self._write() as s:
            return bool(s.execute(
                sa.update(Campaign)
                .where(Campaign.id == campaign_id, unchanged(Campaign.pid, seen.pid),
                       unchanged(Campaign.runner_host, seen.runner_host),
                       unchanged(Campaign.heartbeat_at, seen.heartbeat_at))
                .values(status="running", finished_at=None, updated_at=now, heartbeat_at=now,
                        pid=os.getpid(), runner_host=socket.gethostname())
            ).rowcount)

    def heartbeat(self, campaign_id: str, pid: int | None = None) -> None:
        """Mark the campaign's runner as alive (call every few seconds from the loop)."""
        with self._write() as s:
            updated = s.execute(
                sa.update(Campaign).where(Campaign.id == campaign_id)
                .values(heartbeat_at=utcnow(), pid=pid if pid is not None else os.getpid(),
                        runner_host=socket.gethostname())
            ).rowcount
            if not updated:
                raise NotFound(f"no campaign {campaign_id!r}")

    def campaign_spend(self, campaign_id: str) -> float:
        """Total cost of the campaign's recorded LLM calls (the source of truth for budgets)."""
        return reads.campaign_spend(self.fetch, campaign_id)

    # -- agents --------------------------------------------------------------

    def add_agent(
        self,
        campaign_id: str,
        commit_sha: str,
        *,
        parent_id: str | None = None,
        generation: int = 0,
        status: str,
        origin: str,
        proposal: dict[str, Any] | None = None,
        diagnosis_target: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        agent_id: str | None = None,
    ) -> Agent:
        _check("agent status", status, AGENT_STATUSES)
        _check("agent origin", origin, AGENT_ORIGINS)
        # A row pointing at code that was never stored would be an agent nobody can run.
        commit_sha = self.code.resolve(commit_sha)
        agent = Agent(
            id=agent_id or new_id(6), campaign_id=campaign_id, parent_id=parent_id, generation=generation,
            commit_sha=commit_sha, status=status, origin=origin, proposal=proposal,
            diagnosis_target=diagnosis_target, meta=meta or {}, stage_reached=0,
        )
        # The ref first: the commit is kept from git's garbage collection before any row points at it.
        # (A ref already there is another row's, or a crashed attempt's: moved only once the row is in.)
        existed = agent_id is not None and self.code.get_ref(agent.id) is not None
        if not existed:
            self.code.set_ref(agent.id, commit_sha)
        try:
            with self._write() as s:
                _get(s, Campaign, campaign_id, "campaign")
                if parent_id is not None:
                    _get(s, Agent, parent_id, "parent agent")
                if s.get(Agent, agent.id) is not None:
                    raise UsageError(f"agent {agent.id} already exists")
                s.add(agent)
        except BaseException:
            if not existed:
                self.code.drop_ref(agent.id)
            raise
        if existed:
            self.code.set_ref(agent.id, commit_sha)
        return agent

    def update_agent(self, agent_id: str, **fields: Any) -> Agent:
        unknown = set(fields) - AGENT_UPDATABLE
        if unknown:
            raise TypeError(f"update_agent: cannot set {', '.join(sorted(unknown))}")
        if "status" in fields:
            _check("agent status", fields["status"], AGENT_STATUSES)
        if fields.get("commit_sha"):
            fields["commit_sha"] = self.code.resolve(fields["commit_sha"])
            self.code.set_ref(agent_id, fields["commit_sha"])  # before the row points at it, as in add_agent
        with self._write() as s:
            agent = _get(s, Agent, agent_id, "agent")
            for key, value in fields.items():
                setattr(agent, key, value)
            agent.updated_at = utcnow()
        return agent

    def record_child_code(self, agent_id: str, commit_sha: str, meta: dict[str, Any], *,
                          evaluate_twins: bool = False) -> Agent:
        """A child's own code is committed: it goes on to be evaluated ('evaluating'),
        unless its code tree equals that of an agent already in its campaign with
        code of its own. Then it is that agent's twin (`twin_of`, the earliest such
        agent), and takes status 'twin' (never evaluated, never selected: it is
        the same agent again), or, with `evaluate_twins`, is evaluated anyway.

        One transaction decides and records, so of two siblings that commit the
        same code at the same time exactly one is the original."""
        commit_sha = self.code.resolve(commit_sha)
        self.code.set_ref(agent_id, commit_sha)  # before the row points at it, as in add_agent
        with self._write() as s:
            agent = _get(s, Agent, agent_id, "agent")
            if s.bind.dialect.name == "postgresql":
                # SQLite's write transaction already holds the database; PostgreSQL's
                # siblings serialize on their campaign's row.
                s.execute(select(Campaign.id).where(Campaign.id == agent.campaign_id).with_for_update())
            others = [(aid, sha) for aid, sha, other_meta in s.execute(
                select(Agent.id, Agent.commit_sha, Agent.meta)
                .where(Agent.campaign_id == agent.campaign_id, Agent.id != agent_id, Agent.twin_of.is_(None))
                .order_by(Agent.generation, Agent.created_at, Agent.id))
                if has_own_code(other_meta)]
            trees = self.code.trees([commit_sha, *(sha for _, sha in others)])
            mine = trees.get(commit_sha)
            original = next((aid for aid, sha in others if mine is not None and trees.get(sha) == mine), None)
            agent.commit_sha = commit_sha
            agent.meta = meta
            agent.twin_of = original
            agent.status = "twin" if original is not None and not evaluate_twins else "evaluating"
            agent.updated_at = utcnow()
        return agent

    def get_agent(self, id_or_prefix: str) -> Agent:
        with self._read() as s:
            return _resolve(s, Agent, id_or_prefix, "agent")

    def list_agents(self, campaign_id: str | None = None, statuses: Iterable[str] | None = None) -> list[Agent]:
        query = select(Agent).order_by(Agent.generation, Agent.created_at, Agent.id)
        if campaign_id is not None:
            query = query.where(Agent.campaign_id == campaign_id)
        if statuses is not None:
            query = query.where(Agent.status.in_(list(statuses)))
        with self._read() as s:
            return list(s.scalars(query))

    def children_counts(self, campaign_id: str, statuses: Iterable[str] | None = ("admitted",)) -> dict[str, int]:
        """parent id -> number of its children (with those statuses; None: all) — for DGM's parent weights."""
        query = (
            select(Agent.parent_id, func.count()).where(Agent.campaign_id == campaign_id, Agent.parent_id.is_not(None))
            .group_by(Agent.parent_id)
        )
        if statuses is not None:
            query = query.where(Agent.status.in_(list(statuses)))
        with self._read() as s:
            return {parent: n for parent, n in s.execute(query)}

    def ancestors(self, agent_id: str) -> list[Agent]:
        """The agent's lineage, from itself back to its root."""
        chain: list[Agent] = []
        with self._read() as s:
            agent: Agent | None = _resolve(s, Agent, agent_id, "agent")
            while agent is not None and len(chain) <= 100_000:
                chain.append(agent)
                agent = s.get(Agent, agent.parent_id) if agent.parent_id else None
        return chain

    # -- task runs -----------------------------------------------------------

    def start_task_run(
        self,
        campaign_id: str,
        agent_id: str,
        kind: str,
        benchmark: str,
        task_id: str,
        stage: str,
        model: str,
        attempt: int = 0,
        repeat: int = 0,
    ) -> TaskRun:
        """Begin a run, or hand back this campaign's existing one with the same key
        (`repeat`: which sample of the agent on this task; each is a run of its own).

        A finished run is returned as is (check `run.finished`): a resumed
        campaign must not redo it. Another campaign's runs never count: a
        later evaluation of the same agent runs afresh. A 'running' one is a crashed earlier attempt:
        it is reset and its id reused; its LLM calls stay billed to the campaign
        and agent but are detached from the run so that replay sees one clean
        call sequence.
        """
        _check("task run kind", kind, TASK_RUN_KINDS)
        key = dict(campaign_id=campaign_id, agent_id=agent_id, kind=kind, benchmark=benchmark, task_id=task_id,
                   stage=stage, attempt=attempt, repeat=repeat)
        for _ in range(2):  # PostgreSQL: a concurrent insert of the same key makes us re-read it
            try:
                with self._write() as s:
                    existing = s.scalar(select(TaskRun).filter_by(**key))
                    if existing is not None and existing.finished:
                        return existing
                    if existing is not None:
                        orphaned = s.execute(
                            sa.update(LLMCall).where(LLMCall.task_run_id == existing.id).values(task_run_id=None)
                        ).rowcount
                        for column in ("tests_status", "patch", "error", "duration_s", "agent_duration_s",
                                       "test_duration_s", "trajectory_artifact", "agent_log_artifact",
                                       "eval_log_artifact", "finished_at"):
                            setattr(existing, column, None)
                        existing.cost_usd = 0.0
                        existing.model = model
                        existing.created_at = utcnow()
                        s.add(Event(campaign_id=existing.campaign_id, agent_id=agent_id, kind="task_run_reset",
                                    payload={"task_run_id": existing.id, "task_id": task_id, "stage": stage,
                                             "detached_llm_calls": orphaned}))
                        return existing
                    _get(s, Campaign, campaign_id, "campaign")
                    _get(s, Agent, agent_id, "agent")
                    run = TaskRun(id=new_id(), status="running", model=model, cost_usd=0.0, **key)
                    s.add(run)
                return run
            except IntegrityError:
                continue
        raise ArchiveUnavailable(f"could not start task run {key}: concurrent writers kept conflicting")

    def finish_task_run(
        self,
        run_id: str,
        *,
        status: str,
        patch: str | None = None,
        tests_status: dict[str, Any] | None = None,
        error: str | None = None,
        duration_s: float | None = None,
        agent_duration_s: float | None = None,
        test_duration_s: float | None = None,
        trajectory_artifact: str | None = None,
        agent_log_artifact: str | None = None,
        eval_log_artifact: str | None = None,
    ) -> TaskRun:
        """Record a run's outcome; its cost becomes the sum of its LLM calls."""
        _check("finished task run status", status, TASK_RUN_FINISHED_STATUSES)
        with self._write() as s:
            run = _get(s, TaskRun, run_id, "task run")
            now = utcnow()
            run.status = status
            run.patch, run.tests_status, run.error = patch, tests_status, error
            run.duration_s = duration_s if duration_s is not None else (now - run.created_at).total_seconds()
            run.agent_duration_s, run.test_duration_s = agent_duration_s, test_duration_s
            run.trajectory_artifact = trajectory_artifact
            run.agent_log_artifact = agent_log_artifact
            run.eval_log_artifact = eval_log_artifact
            run.cost_usd = float(s.scalar(
                select(func.coalesce(func.sum(LLMCall.cost_usd), 0.0)).where(LLMCall.task_run_id == run_id)
            ))
            run.finished_at = now
        return run

    def get_task_run(self, run_id: str) -> TaskRun:
        with self._read() as s:
            return _resolve(s, TaskRun, run_id, "task run")

    def list_task_runs(
        self,
        agent_id: str | None = None,
        campaign_id: str | None = None,
        kind: str | None = None,
        stage: str | None = None,
        task_id: str | None = None,
        status: str | None = None,
    ) -> list[TaskRun]:
        filters = dict(agent_id=agent_id, campaign_id=campaign_id, kind=kind, stage=stage, task_id=task_id, status=status)
        query = select(TaskRun).filter_by(**{k: v for k, v in filters.items() if v is not None})
        with self._read() as s:
            return list(s.scalars(query.order_by(TaskRun.created_at, TaskRun.id)))

    def task_ids_run(self) -> dict[str, set[str]]:
        """Benchmark -> the task ids any task run of the archive was on (every campaign, every kind)."""
        query = select(TaskRun.benchmark, TaskRun.task_id).distinct()
        out: dict[str, set[str]] = {}
        with self._read() as s:
            for benchmark, task_id in s.execute(query):
                out.setdefault(benchmark, set()).add(task_id)
        return out

    def agent_task_outcomes(self, campaign_id: str, stages: Iterable[str] | None = None) -> dict[str, dict[str, bool]]:
        """agent id -> task id -> resolved?: resolved in at least half of its repeats of the task (without
        repeats: its latest finished run)."""
        return {agent_id: {task_id: 2 * resolved >= runs for task_id, (resolved, runs) in per_task.items()}
                for agent_id, per_task in self.task_resolve_rates(campaign_id, stages).items()}

    def task_resolve_rates(self, campaign_id: str, stages: Iterable[str] | None = None,
                           agent_ids: Sequence[str] | None = None) -> dict[str, dict[str, tuple[int, int]]]:
        """agent id -> task id -> (resolved repeats, finished repeats) over its finished 'task' runs of
        the campaign: each task's resolve rate, as repeats measure it. Of several attempts at one
        repeat, the latest finished one counts (a retry replaces, a repeat adds a sample)."""
        query = select(TaskRun.agent_id, TaskRun.task_id, TaskRun.repeat, TaskRun.status).where(
            TaskRun.campaign_id == campaign_id, TaskRun.kind == "task", TaskRun.status != "running",
        ).order_by(TaskRun.finished_at, TaskRun.created_at, TaskRun.id)
        if stages is not None:
            query = query.where(TaskRun.stage.in_(list(stages)))
        if agent_ids is not None:
            query = query.where(TaskRun.agent_id.in_(list(agent_ids)))
        latest: dict[tuple[str, str, int], bool] = {}
        with self._read() as s:
            for agent_id, task_id, repeat, status in s.execute(query):
                latest[agent_id, task_id, repeat] = status == "resolved"  # later rows win
        rates: dict[str, dict[str, tuple[int, int]]] = {}
        for (agent_id, task_id, _), resolved in latest.items():
            done, runs = rates.setdefault(agent_id, {}).get(task_id, (0, 0))
            rates[agent_id][task_id] = (done + resolved, runs + 1)
        return rates

    # -- LLM calls -----------------------------------------------------------

    def record_llm_call(
        self,
        *,
        model: str,
        request_hash: str,
        purpose: str,
        campaign_id: str | None = None,
        agent_id: str | None = None,
        task_run_id: str | None = None,
        seq: int | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float = 0.0,
        latency_s: float = 0.0,
        status: str = "ok",
        error: str | None = None,
        artifact_id: str | None = None,
        scripted: bool = False,
        priced: bool = True,
        api_base: str | None = None,
    ) -> LLMCall:
        """Record one call and add its cost to the campaign's running total, atomically.

        `priced` False: the model had no known price and `cost_usd` (0) is no price;
        `api_base`: the endpoint the call went to (None: the provider's default).

        campaign_id / agent_id default to the task run's; seq defaults to the next
        number in the run (or in agent + purpose when there is no run).
        """
        _check("LLM call purpose", purpose, LLM_PURPOSES)
        _check("LLM call status", status, LLM_CALL_STATUSES)
        with self._write() as s:
            if task_run_id is not None:
                run = _get(s, TaskRun, task_run_id, "task run")
                campaign_id = campaign_id or run.campaign_id
                agent_id = agent_id or run.agent_id
            if seq is None:
                seq = _next_seq(s, task_run_id, agent_id, purpose)
            if task_run_id is not None and cost_usd and run.status != "running":
                # A call still in flight when its run ended (its sandbox was
                # killed, its time was up) lands afterwards: the run's cost
                # stays the sum of its calls.
                run.cost_usd = (run.cost_usd or 0.0) + cost_usd
            if campaign_id is not None and cost_usd:
                s.execute(
                    sa.update(Campaign).where(Campaign.id == campaign_id)
                    .values(spent_usd=Campaign.spent_usd + cost_usd, updated_at=utcnow())
                )
            call = LLMCall(
                id=new_id(), campaign_id=campaign_id, agent_id=agent_id, task_run_id=task_run_id, purpose=purpose,
                seq=seq, model=model, request_hash=request_hash, prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens, cost_usd=cost_usd, latency_s=latency_s, status=status,
                error=error, artifact_id=artifact_id, scripted=scripted, priced=priced, api_base=api_base,
            )
            s.add(call)
        return call

    def next_llm_seq(self, task_run_id: str | None = None, *, agent_id: str | None = None, purpose: str | None = None) -> int:
        with self._read() as s:
            return _next_seq(s, task_run_id, agent_id, purpose)

    def get_llm_call(self, call_id: str) -> LLMCall:
        with self._read() as s:
            return _resolve(s, LLMCall, call_id, "LLM call")

    def list_llm_calls(
        self,
        task_run_id: str | None = None,
        *,
        agent_id: str | None = None,
        campaign_id: str | None = None,
        purpose: str | None = None,
        request_hash: str | None = None,
    ) -> list[LLMCall]:
        """Matching calls in replay order (seq, then time)."""
        filters = dict(task_run_id=task_run_id, agent_id=agent_id, campaign_id=campaign_id, purpose=purpose,
                       request_hash=request_hash)
        query = select(LLMCall).filter_by(**{k: v for k, v in filters.items() if v is not None})
        with self._read() as s:
            return list(s.scalars(query.order_by(LLMCall.seq, LLMCall.created_at, LLMCall.id)))

    # -- events --------------------------------------------------------------

    def add_event(self, campaign_id: str | None, kind: str, payload: dict[str, Any] | None = None,
                  agent_id: str | None = None) -> Event:
        ev = Event(campaign_id=campaign_id, agent_id=agent_id, kind=kind, payload=payload or {})
        with self._write() as s:
            s.add(ev)
        return ev

    def list_events(self, campaign_id: str | None = None, since_id: int | None = None,
                    kinds: Iterable[str] | None = None, limit: int | None = None) -> list[Event]:
        """Events in id order; `since_id` gives only newer ones (for tailing)."""
        query = select(Event).order_by(Event.id)
        if campaign_id is not None:
            query = query.where(Event.campaign_id == campaign_id)
        if since_id is not None:
            query = query.where(Event.id > since_id)
        if kinds is not None:
            query = query.where(Event.kind.in_(list(kinds)))
        if limit is not None:
            query = query.limit(limit)
        with self._read() as s:
            return list(s.scalars(query))

    # -- generation statistics -------------------------------------------------

    def record_generation_stat(
        self,
        campaign_id: str,
        generation: int,
        *,
        archive_size: int,
        best_score: float | None,
        mean_score: float | None,
        coverage: int,
        coverage_fraction: float,
        mean_jaccard_distance: float | None = None,
        spent_usd: float,
    ) -> GenerationStat:
        """Insert or replace the statistics of one generation."""
        values = dict(archive_size=archive_size, best_score=best_score, mean_score=mean_score, coverage=coverage,
                      coverage_fraction=coverage_fraction, mean_jaccard_distance=mean_jaccard_distance,
                      spent_usd=spent_usd, created_at=utcnow())
        with self._write() as s:
            stat = s.get(GenerationStat, (campaign_id, generation))
            if stat is None:
                stat = GenerationStat(campaign_id=campaign_id, generation=generation)
                s.add(stat)
            for key, value in values.items():
                setattr(stat, key, value)
        return stat

    def list_generation_stats(self, campaign_id: str) -> list[GenerationStat]:
        with self._read() as s:
            query = select(GenerationStat).where(GenerationStat.campaign_id == campaign_id)
            return list(s.scalars(query.order_by(GenerationStat.generation)))

    # -- bulk loading (imports, synthetic archives) -------------------------------
    # One transaction and a few multi-row INSERTs per call instead of one
    # transaction per row: 5 million task runs load in minutes, not hours.
    # Rows are validated like the one-row methods', in bulk.

    def bulk_add_agents(self, rows: Sequence[dict[str, Any]], *, refs: bool = True) -> int:
        """Insert agents (dicts of Agent columns; parents before children). Returns the count.

        Each gets its `refs/agents/<id>` like `add_agent`'s; `refs=False` skips
        them (synthetic archives, whose agents share placeholder commits)."""
        now = utcnow()
        prepared: list[dict[str, Any]] = []
        for row in rows:
            _check("agent status", row["status"], AGENT_STATUSES)
            _check("agent origin", row["origin"], AGENT_ORIGINS)
            prepared.append({"id": new_id(6), "parent_id": None, "generation": 0, "rejection_reason": None,
                             "proposal": None, "diagnosis_target": None, "score": None, "heldout_score": None,
                             "stage_reached": 0, "twin_of": None, "meta": {}, "created_at": now, "updated_at": now,
                             **row})
        # A row pointing at code that was never stored would be an agent nobody can run.
        self._check_commits_exist({r["commit_sha"] for r in prepared})
        if refs:
            self.code.set_refs({r["id"]: r["commit_sha"] for r in prepared})
        return self._bulk_insert(Agent, prepared)

    def bulk_add_task_runs(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert finished task runs (dicts of TaskRun columns). Returns the count."""
        now = utcnow()
        prepared: list[dict[str, Any]] = []
        for row in rows:
            _check("task run kind", row["kind"], TASK_RUN_KINDS)
            _check("task run status", row["status"], TASK_RUN_STATUSES)
            prepared.append({"id": new_id(), "attempt": 0, "repeat": 0, "tests_status": None, "patch": None,
                             "error": None,
                             "duration_s": None, "agent_duration_s": None, "test_duration_s": None,
                             "cost_usd": 0.0, "trajectory_artifact": None, "agent_log_artifact": None,
                             "eval_log_artifact": None, "created_at": now,
                             "finished_at": None if row["status"] == "running" else now, **row})
        return self._bulk_insert(TaskRun, prepared)

    def bulk_add_llm_calls(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert LLM call rows and add their cost to their campaigns' running totals."""
        prepared: list[dict[str, Any]] = []
        spend: dict[str, float] = {}
        now = utcnow()
        for row in rows:
            _check("LLM call purpose", row["purpose"], LLM_PURPOSES)
            _check("LLM call status", row.get("status", "ok"), LLM_CALL_STATUSES)
            full = {"id": new_id(), "campaign_id": None, "agent_id": None, "task_run_id": None, "prompt_tokens": 0,
                    "completion_tokens": 0, "cost_usd": 0.0, "latency_s": 0.0, "status": "ok", "error": None,
                    "artifact_id": None, "scripted": False, "created_at": now, "priced": True, "api_base": None,
                    **row}
            if full["campaign_id"] and full["cost_usd"]:
                spend[full["campaign_id"]] = spend.get(full["campaign_id"], 0.0) + full["cost_usd"]
            prepared.append(full)
        n = self._bulk_insert(LLMCall, prepared)
        if spend:
            with self._write() as s:
                for campaign_id, cost in spend.items():
                    s.execute(sa.update(Campaign).where(Campaign.id == campaign_id)
                              .values(spent_usd=Campaign.spent_usd + cost, updated_at=utcnow()))
        return n

    def _bulk_insert(self, model: type[Base], rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        try:
            with self._write() as s:
                for start in range(0, len(rows), _BULK_CHUNK):
                    s.execute(sa.insert(model.__table__), rows[start:start + _BULK_CHUNK])
        except IntegrityError as exc:
            raise UsageError(f"bulk insert into {model.__tablename__} rejected: {short_error(exc)}") from None
        return len(rows)

    def _check_commits_exist(self, shas: set[str]) -> None:
        # One `git cat-file --batch-check` for all of them, not one git process per agent.
        wanted = sorted(shas)
        if not wanted:
            return
        bad = [sha for sha in wanted if len(sha) != 40 or not _HEX_RE.match(sha)]
        if bad:
            raise UsageError(f"bulk rows need full 40-hex commit shas, got {bad[0]!r}")
        out = self.code._git("cat-file", "--batch-check", input="\n".join(wanted) + "\n")
        missing = [line.split()[0] for line in out.splitlines() if line.endswith(" missing")]
        if missing:
            raise NotFound(f"commit(s) not in the agent code store: {', '.join(missing[:5])}"
                           + (" ..." if len(missing) > 5 else ""))

    # -- sessions ------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with translate_db_errors(self.url), self._write_session() as s, s.begin():
            yield s


# -- helpers -------------------------------------------------------------------


def _check(what: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of: {', '.join(allowed)}")


def _get(s: Session, model: type[_M], key: Any, label: str) -> _M:
    obj = s.get(model, key)
    if obj is None:
        raise NotFound(f"no {label} {key!r}")
    return obj


def _by_prefix(s: Session, model: type[_M], prefix: str, limit: int = 6) -> list[_M]:
    # Ids are hex; anything else cannot be a prefix and must not reach LIKE unescaped.
    if not prefix or not _HEX_RE.match(prefix):
        return []
    id_col = model.__table__.c.id
    return list(s.scalars(select(model).where(id_col.startswith(prefix)).order_by(id_col).limit(limit)))


def _resolve(s: Session, model: type[_M], id_or_prefix: str, label: str) -> _M:
    obj = s.get(model, id_or_prefix)
    if obj is not None:
        return obj
    return one_by_prefix(_by_prefix(s, model, id_or_prefix), id_or_prefix, label)


def _next_seq(s: Session, task_run_id: str | None, agent_id: str | None, purpose: str | None) -> int:
    if task_run_id is not None:
        where = [LLMCall.task_run_id == task_run_id]
    elif agent_id is not None and purpose is not None:
        where = [LLMCall.task_run_id.is_(None), LLMCall.agent_id == agent_id, LLMCall.purpose == purpose]
    else:
        raise TypeError("next_llm_seq needs a task_run_id, or an agent_id and a purpose")
    last = s.scalar(select(func.max(LLMCall.seq)).where(*where))
    return 0 if last is None else last + 1
