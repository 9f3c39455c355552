"""ArchiveStore: the only code that writes archive rows.

Every public method opens its own session and, when it writes, commits
everything it does in ONE transaction, so a crash leaves either the whole step
or none of it. Methods return detached, fully loaded ORM objects (reading their
attributes never touches the database again), which makes the store safe to
share between threads.

SQLite (the default) runs in WAL mode with write transactions opened as
`BEGIN IMMEDIATE`: a writer takes the database's write lock before it reads,
so read-then-write steps (e.g. "is this task run done already?") cannot race
with another process and waiting writers queue on the busy timeout instead of
failing with a lock-upgrade deadlock. On PostgreSQL the same steps rely on the
unique constraints and retry once on a conflicting insert.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dgm.archive.artifacts import ArtifactStore, canonical_json
from dgm.archive.code import AgentCodeStore
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
    ArchiveInfo,
    Base,
    Campaign,
    Event,
    GenerationStat,
    LLMCall,
    TaskRun,
    has_own_code,
    utcnow,
)
from dgm.errors import ArchiveUnavailable, NotFound, UsageError
from dgm.ranking import IN_FLIGHT

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 5

_M = TypeVar("_M", bound=Base)
_HEX_RE = re.compile(r"^[0-9a-f]+$")
# Alembic's command API goes through module-global proxies (alembic.context),
# so two threads must not run it at once.
_alembic_lock = threading.Lock()
_BULK_CHUNK = 5_000

AGENT_UPDATABLE = frozenset(
    {"status", "rejection_reason", "proposal", "diagnosis_target", "score", "heldout_score",
     "stage_reached", "meta", "generation", "parent_id", "commit_sha"}
)


def llm_request_hash(model: str, messages: Sequence[Any], params: dict[str, Any] | None = None) -> str:
    """sha256 of the canonical JSON request; equal requests give equal hashes across runs."""
    return hashlib.sha256(canonical_json({"model": model, "messages": list(messages), "params": params or {}})).hexdigest()


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


def new_id(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


class ArchiveStore:
    """SQL rows + agent code (`.code`) + blobs (`.artifacts`) under one root directory."""

    def __init__(self, engine: sa.Engine, root: Path, url: str):
        self.engine = engine
        self.root = root
        self.url = url
        """The database URL with any password masked."""
        self.code = AgentCodeStore(root / "agents.git")
        self.artifacts = ArtifactStore(root / "artifacts")
        self._read_session = sessionmaker(engine, expire_on_commit=False)
        # Same pool; the option tells the SQLite 'begin' hook to take the write lock up front.
        self._write_session = sessionmaker(engine.execution_options(dgm_write=True), expire_on_commit=False)

    # -- opening -----------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None, root: Path | str = "archive", *, create: bool = True,
             root_given: bool = True) -> ArchiveStore:
        """Open (creating and migrating if needed) the archive; ArchiveUnavailable if impossible.

        With `create=False` (commands that only look at what exists) an
        archive that is not there is `NotFound` instead of a new, empty one:
        browsing from the wrong directory must not look like a lost campaign.

        `root_given=False` (the user named no directory): a database URL's
        archive uses the directory it recorded for its code and artifacts,
        wherever the command runs. A directory that belongs to another
        archive, or a fresh one for an archive that has agents, is refused.
        """
        root = Path(root)
        default_url = url is None
        url = url or f"sqlite:///{root.resolve() / 'dgm.db'}"
        shown = _redact(url)
        follows_record = not default_url and not root_given
        if not create:
            _require_sqlite_file(url, root, shown, default_url)
            if default_url:  # else checked once the database says where its directory is
                _require_code_dir(root)
        made_root = False
        try:
            if create and not follows_record:  # else the directory the archive recorded
                made_root = not root.exists()
                root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveUnavailable(f"cannot open archive {shown}: cannot create directory {root}: {exc.strerror}") from None
        try:
            engine = _create_engine(url)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ArchiveUnavailable(f"cannot open archive {shown}: {_open_failure(url, exc)}") from None
        if not create:
            _require_schema(engine, url, shown)
        try:
            _migrate(engine)
            sqlite_file = _sqlite_file(url)
            db_inside = sqlite_file is not None and sqlite_file.resolve().parent == root.resolve()
            root = _settle_directory_once_raced(engine, root, follow_record=follows_record, create=create,
                                                db_inside=db_inside)
        except (ArchiveUnavailable, UsageError) as exc:
            engine.dispose()
            if made_root:
                try:
                    root.rmdir()  # refused: leave no empty directory behind (kept if anything is in it)
                except OSError:
                    pass
            if isinstance(exc, UsageError):
                raise
            raise ArchiveUnavailable(f"cannot open archive {shown}: {exc}") from None
        except (SQLAlchemyError, OSError) as exc:
            engine.dispose()
            raise ArchiveUnavailable(f"cannot open archive {shown}: {_open_failure(url, exc)}") from None
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
        with self._read() as s:
            return float(s.scalar(select(func.coalesce(func.sum(LLMCall.cost_usd), 0.0)).where(LLMCall.campaign_id == campaign_id)))

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
    ) -> TaskRun:
        """Begin a run, or hand back this campaign's existing one with the same key.

        A finished run is returned as is (check `run.finished`): a resumed
        campaign must not redo it. Another campaign's runs never count: a
        later evaluation of the same agent runs afresh. A 'running' one is a crashed earlier attempt:
        it is reset and its id reused; its LLM calls stay billed to the campaign
        and agent but are detached from the run so that replay sees one clean
        call sequence.
        """
        _check("task run kind", kind, TASK_RUN_KINDS)
        key = dict(campaign_id=campaign_id, agent_id=agent_id, kind=kind, benchmark=benchmark, task_id=task_id,
                   stage=stage, attempt=attempt)
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

    def agent_task_outcomes(self, campaign_id: str, stages: Iterable[str] | None = None) -> dict[str, dict[str, bool]]:
        """agent id -> task id -> resolved?, from each agent's latest finished 'task' run per task."""
        query = select(TaskRun.agent_id, TaskRun.task_id, TaskRun.status).where(
            TaskRun.campaign_id == campaign_id, TaskRun.kind == "task", TaskRun.status != "running",
        ).order_by(TaskRun.finished_at, TaskRun.created_at, TaskRun.id)
        if stages is not None:
            query = query.where(TaskRun.stage.in_(list(stages)))
        outcomes: dict[str, dict[str, bool]] = {}
        with self._read() as s:
            for agent_id, task_id, status in s.execute(query):
                outcomes.setdefault(agent_id, {})[task_id] = status == "resolved"  # later rows win
        return outcomes

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
    ) -> LLMCall:
        """Record one call and add its cost to the campaign's running total, atomically.

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
                error=error, artifact_id=artifact_id, scripted=scripted,
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

    # -- browsing: whole-campaign reads for lineage, listings and the explorer --
    # Each is one grouped query, never one query per agent: a campaign can hold
    # 100,000 agents with 50 runs each, and `dgm lineage` must stay interactive.

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
            campaign = _get(s, Campaign, campaign_id, "campaign")
            n_agents, last_update = s.execute(
                select(func.count(), func.max(Agent.updated_at)).where(Agent.campaign_id == campaign_id)).one()
            n_runs = -1
            if campaign.status == "running":
                n_runs = s.scalar(select(func.count()).select_from(TaskRun).where(TaskRun.campaign_id == campaign_id))
        parts = [campaign.status, str(campaign.updated_at), f"{campaign.spent_usd:.6f}", str(n_agents),
                 str(last_update), str(n_runs)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

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
                             "stage_reached": 0, "meta": {}, "created_at": now, "updated_at": now, **row})
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
            prepared.append({"id": new_id(), "attempt": 0, "tests_status": None, "patch": None, "error": None,
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
                    "artifact_id": None, "scripted": False, "created_at": now, **row}
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
            raise UsageError(f"bulk insert into {model.__tablename__} rejected: {_short(exc)}") from None
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
        with _translate_db_errors(self.url), self._write_session() as s, s.begin():
            yield s

    @contextmanager
    def _read_conn(self) -> Iterator[sa.Connection]:
        with _translate_db_errors(self.url), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with _translate_db_errors(self.url), self._read_session() as s, s.begin():
            yield s


# -- helpers -------------------------------------------------------------------


@contextmanager
def _translate_db_errors(url: str) -> Iterator[None]:
    # A database that went away mid-campaign is an environment problem, not a bug.
    try:
        yield
    except OperationalError as exc:
        reason = _short(exc)
        if "database is locked" in reason:
            # dgm's own writers queue on the busy timeout: only a lock held this long by something else gets here.
            reason = (f"database is locked: another process has held its write lock for over "
                      f"{SQLITE_BUSY_TIMEOUT_S} s (an open sqlite3 shell or transaction?)")
        raise ArchiveUnavailable(f"archive {url}: {reason}") from exc


def _chunks(ids: Sequence[str] | None, size: int = 500) -> Iterator[list[str]]:
    # SQLite caps bound parameters per statement; IN lists go in slices.
    ids = list(ids or [])
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


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
    matches = _by_prefix(s, model, id_or_prefix)
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(m.id for m in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise UsageError(f"{label} id prefix {id_or_prefix!r} is ambiguous: {shown}")
    raise NotFound(f"no {label} with id {id_or_prefix!r}")


def _next_seq(s: Session, task_run_id: str | None, agent_id: str | None, purpose: str | None) -> int:
    if task_run_id is not None:
        where = [LLMCall.task_run_id == task_run_id]
    elif agent_id is not None and purpose is not None:
        where = [LLMCall.task_run_id.is_(None), LLMCall.agent_id == agent_id, LLMCall.purpose == purpose]
    else:
        raise TypeError("next_llm_seq needs a task_run_id, or an agent_id and a purpose")
    last = s.scalar(select(func.max(LLMCall.seq)).where(*where))
    return 0 if last is None else last + 1


def _create_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # The Python driver's own transaction handling is off (isolation_level
        # None) so that the 'begin' hook below decides how transactions start.
        file_db = parsed.database not in (None, "", ":memory:")
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "isolation_level": None},
                                  **(dict(pool_size=8, max_overflow=32) if file_db else {}))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            cur.execute("PRAGMA journal_mode = WAL")  # readers never block the writer, and vice versa
            cur.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode; a power cut may lose the last commits
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("dgm_write") else "BEGIN")

        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "dgm"}
    return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True, pool_size=8, max_overflow=32)


SCHEMA_HEAD = "0004"
"""The newest migration's revision (a test checks it against Alembic's head):
an archive already there is opened without importing Alembic, a second off
every command's start-up."""


ARCHIVE_ID_FILE = "archive-id"
"""In the archive directory: which archive database its code and artifacts belong to."""


def _require_code_dir(root: Path, recorded: str | None = None) -> None:
    if not (root / "agents.git").is_dir():
        # The rows are in the database, the code and artifacts here: a typo must not make a new one.
        hint = f" (this archive's is {recorded})" if recorded and recorded != str(root.resolve()) else ""
        raise NotFound(f"no archive directory at {root} (agent code and artifacts){hint}: give the campaign's "
                       "--archive-dir")


_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class _Raced(Exception):
    """Another process recorded this archive's directory first: read again
    (`wait`: after a moment, its record is about to follow)."""

    def __init__(self, wait: bool = False):
        super().__init__()
        self.wait = wait


def _read_directory_id(root: Path) -> str | None:
    """The archive id the directory is marked with; UsageError if the mark is damaged."""
    path = root / ARCHIVE_ID_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        text = f"unreadable: {getattr(exc, 'strerror', None) or exc}"
    if _ID_RE.match(text):
        return text
    raise UsageError(f"{path.resolve()} is damaged ({text[:40]!r} is no archive id): remove it, and the next dgm "
                     "command checks the directory against the archive's agents and marks it again")


def _settle_directory(engine: sa.Engine, root: Path, *, follow_record: bool, create: bool,
                      db_inside: bool = False, last_try: bool = True) -> Path:
    """The directory holding this database's agent code and artifacts, checked
    to be its own; the first opening records it (and gives the archive an id).

    The database records its directory and id (`archive_info`), and the
    directory carries the same id (`archive-id`). A directory marked with
    another id, or one marked while this database has no record, belongs to
    another archive; a fresh directory is refused while the recorded one
    exists or while the archive has agents whose code it lacks.
    """
    with Session(engine) as session:
        info = {row.key: row.value for row in session.scalars(select(ArchiveInfo))}
    archive_id, recorded = info.get("archive_id"), info.get("archive_dir")
    if follow_record and recorded:
        root = Path(recorded)
    where = root.resolve()
    if db_inside:
        # An SQLite file in the directory is that directory's archive: the mark
        # follows the database (the directory's own when the database has none).
        directory_id = _read_directory_id(root)
        if archive_id is None:
            archive_id = _claim(engine, directory_id or secrets.token_hex(16), str(where), first=True)
        elif recorded != str(where):
            _claim(engine, archive_id, str(where))
        if directory_id != archive_id:
            _write_mark(root, archive_id, replace=True)
        return root
    directory_id = _read_directory_id(root)
    if archive_id is not None and directory_id == archive_id:
        if recorded != str(where):  # moved, or reached by another path: remember where it is now
            _claim(engine, archive_id, str(where))
        return root
    elsewhere = f"; this database's are in {recorded}: give that --archive-dir" \
        if recorded and recorded != str(where) else ""
    if directory_id is not None and archive_id is not None:
        raise UsageError(f"{where} holds the agent code and artifacts of another archive (id {directory_id[:8]}, "
                         f"this database's is {archive_id[:8]}){elsewhere}")
    if directory_id is None and recorded and recorded != str(where) and _in_use(Path(recorded)):
        if not create:
            _require_code_dir(root, recorded)
        raise UsageError(f"this archive's agent code and artifacts are in {recorded}, not {where}: give that "
                         "--archive-dir (or move it here)")
    has_code = (root / "agents.git").is_dir()
    with Session(engine) as session:
        agents = session.scalar(select(func.count()).select_from(Agent)) or 0
        shas = list(session.scalars(select(Agent.commit_sha).order_by(Agent.created_at.desc()).limit(50))) \
            if agents and has_code else []
    if agents:
        if not has_code:
            if not create:
                _require_code_dir(root, recorded)
            raise UsageError(f"this archive has {agents} agents but {where} holds no agent code: give the "
                             f"--archive-dir where its agents.git is" + (f" ({recorded})" if recorded else ""))
        lacking = AgentCodeStore(root / "agents.git").missing(list(dict.fromkeys(shas)))
        if lacking:
            raise UsageError(f"{where} does not hold this archive's agent code ({len(lacking)} of its latest "
                             f"agents' commits are missing): give the right --archive-dir"
                             + (f" ({recorded})" if recorded else ""))
    elif directory_id is not None:
        if archive_id is None and not has_code and not last_try:
            # Perhaps a racing first opening of this same database: it marks
            # the directory just before it records it. Read again shortly.
            raise _Raced(wait=True)
        # Marked by another database, and this one has nothing of its own in it.
        raise UsageError(f"{where} already holds another archive's agent code and artifacts (id "
                         f"{directory_id[:8]}): give this database its own --archive-dir")
    elif not create and not has_code:
        _require_code_dir(root, recorded)
    # First opening by a dgm that records this (a new archive, or one made before it did), or
    # a directory of this archive's own code that carries no mark yet: mark the directory
    # first, then claim the id in the database (one winner among racing openings). Marking
    # first means a racing opening that reads the record also finds the recorded directory
    # in use; a loser takes its own mark back.
    archive_id = archive_id or directory_id or secrets.token_hex(16)
    marked_here = False
    if directory_id is None:
        root.mkdir(parents=True, exist_ok=True)
        if not _write_mark(root, archive_id, replace=False):
            raise _Raced()  # another opening marked it just now: read again
        marked_here = True
    try:
        _claim(engine, archive_id, str(where), first=info.get("archive_id") is None)
    except (_Raced, IntegrityError):
        if marked_here:
            _take_back_mark(engine, root, archive_id)
        raise
    return root


def _write_mark(root: Path, archive_id: str, *, replace: bool) -> bool:
    """Mark `root` with `archive_id`, whole or not at all (a racing reader never
    sees a half-written mark). Without `replace`, only where no mark is yet:
    False when there is one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{ARCHIVE_ID_FILE}-", dir=root)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(archive_id + "\n")
        if replace:
            os.replace(tmp, root / ARCHIVE_ID_FILE)
            return True
        try:
            os.link(tmp, root / ARCHIVE_ID_FILE)
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _take_back_mark(engine: sa.Engine, root: Path, archive_id: str) -> None:
    """After a lost claim: remove the mark this opening made, unless the winner
    recorded that same id (it read the mark and claimed it: the mark is right)."""
    with Session(engine) as session:
        winner = session.get(ArchiveInfo, "archive_id")
    if winner is not None and winner.value == archive_id:
        return
    try:
        if _read_directory_id(root) == archive_id:
            (root / ARCHIVE_ID_FILE).unlink(missing_ok=True)
    except UsageError:
        pass


def _in_use(directory: Path) -> bool:
    """A recorded archive directory that still holds agent code or its mark."""
    return (directory / "agents.git").is_dir() or (directory / ARCHIVE_ID_FILE).exists()


def _settle_directory_once_raced(engine: sa.Engine, root: Path, **kwargs) -> Path:
    """`_settle_directory`, again if another process's first opening got in between."""
    attempts = 5
    for attempt in range(attempts):
        try:
            return _settle_directory(engine, root, last_try=attempt == attempts - 1, **kwargs)
        except (IntegrityError, _Raced) as exc:
            if attempt == attempts - 1:
                raise ArchiveUnavailable("other processes kept changing where its code is recorded") from None
            if isinstance(exc, _Raced) and exc.wait:
                time.sleep(0.2)
    raise AssertionError("unreachable")


def _claim(engine: sa.Engine, archive_id: str, directory: str, *, first: bool = False) -> str:
    """Record `archive_id` and `directory`; with `first`, only if no id is recorded
    yet (else `_Raced`: another opening claimed it). Returns the id."""
    with Session(engine.execution_options(dgm_write=True)) as session, session.begin():
        stored = session.get(ArchiveInfo, "archive_id")
        if stored is None:
            session.add(ArchiveInfo(key="archive_id", value=archive_id))
        elif stored.value != archive_id or first:
            raise _Raced()
        row = session.get(ArchiveInfo, "archive_dir")
        if row is None:
            session.add(ArchiveInfo(key="archive_dir", value=directory))
        else:
            row.value = directory
    return archive_id


def _sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names (None for other databases, memory, or an unparsable URL)."""
    try:
        parsed = sa.make_url(url)
    except Exception:  # noqa: BLE001 - left for create_engine to report
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _require_sqlite_file(url: str, root: Path, shown: str, default_url: bool) -> None:
    """NotFound when `url` names an SQLite file that does not exist."""
    path = _sqlite_file(url)
    if path is None or path.exists():
        return
    if default_url:
        raise NotFound(f"no archive in {root.resolve()} (it has no dgm.db): run dgm where the campaign's "
                       "archive/ is, or give --archive-dir (or --archive)")
    raise NotFound(f"no archive at {shown}: the database file does not exist")


def _require_schema(engine: sa.Engine, url: str, shown: str) -> None:
    """NotFound when the database answers but holds no dgm archive (nothing is created in it)."""
    try:
        exists = sa.inspect(engine).has_table("alembic_version")
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ArchiveUnavailable(f"cannot open archive {shown}: {_open_failure(url, exc)}") from None
    if not exists:
        engine.dispose()
        raise NotFound(f"no archive in {shown}: the database has no dgm tables (`dgm run` or `dgm eval` makes them)")


def _at_head(engine: sa.Engine) -> bool:
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return False  # a new database: no alembic_version table yet
    return rows == [SCHEMA_HEAD]


def _migrate(engine: sa.Engine) -> None:
    """Bring the schema to head; cheap when it is already there, safe when racing other openers."""
    if _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    if current == (head,):
        return
    known = {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise ArchiveUnavailable(
            f"its schema revision {', '.join(unknown)} is newer than this dgm understands (upgrade dgm)"
        )
    sqlite = engine.dialect.name == "sqlite"
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are not the user's business
    with _alembic_lock, engine.connect() as conn:
        # SQLite alters a table by copying it and dropping the original, which
        # the rows of other tables still point at: foreign keys are checked
        # after the migration instead of during it (the pragma only takes
        # effect outside a transaction, hence on the raw connection, first).
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.execution_options(dgm_write=True).begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise ArchiveUnavailable(f"upgrading its schema would break {len(broken)} reference(s) "
                                                 f"between tables (first: {tuple(broken[0])}); nothing was changed")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def _redact(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given, minus anything after '@'
        return re.sub(r"//[^/@]*@", "//***@", url)


def _open_failure(url: str, exc: BaseException) -> str:
    """Why opening failed, in a line; for an SQLite file in a directory dgm
    cannot write (a read-only copy or mount), says so: in WAL mode even a
    reader must create the -wal and -shm files beside the database."""
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and "unable to open database file" in _short(exc):
        directory = sqlite_file.resolve().parent
        if directory.is_dir() and not os.access(directory, os.W_OK):
            return (f"unable to open database file: its directory {directory} is not writable, and SQLite must "
                    "create its -wal and -shm files there even to read (copy the archive somewhere writable)")
    return _short(exc)


def _short(exc: BaseException) -> str:
    """First line of the driver's message, without SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    line = text.splitlines()[0].strip()
    return line[:300]
