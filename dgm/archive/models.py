"""The archive's schema: typed SQLAlchemy models, one class per table.

Only `dgm.archive.store` writes these rows; everything else reads the detached
objects it returns. Enumerated columns are plain strings validated by the store
(the allowed values are the tuples below), not database enums or CHECKs, so
that adding a status never needs a table rebuild on SQLite.

Any change here needs a new Alembic revision in `migrations/versions/`; the
test suite fails when the two disagree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from dgm.archive.records import TaskRunOutcome


CAMPAIGN_KINDS = ("evolution", "eval", "import", "replay")
CAMPAIGN_STATUSES = ("running", "completed", "budget_exhausted", "interrupted", "failed")
AGENT_STATUSES = ("seed", "pending", "self_modifying", "evaluating", "admitted", "rejected", "twin")
AGENT_ORIGINS = ("seed", "dir", "child", "import")
TASK_RUN_KINDS = ("task", "self_modify", "sanity", "replay")
TASK_RUN_STATUSES = ("running", "resolved", "unresolved", "empty_patch", "error", "timeout", "ok")
TASK_RUN_FINISHED_STATUSES = tuple(s for s in TASK_RUN_STATUSES if s != "running")
LLM_PURPOSES = ("diagnose", "self_modify", "task", "other")
LLM_CALL_STATUSES = ("ok", "error")

ID_LEN = 64  # room for uuid hex, sha256 hex or human-chosen ids
SHA_LEN = 40


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no timezone storage and hands back naive values; without this,
    rows read from SQLite and PostgreSQL would compare differently.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def without_nul(value: Any) -> Any:
    """`value` with NUL replaced by U+FFFD, if it is a string."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


class _NulFree(TypeDecorator):
    """Text as every backend can keep it: PostgreSQL refuses NUL in text
    columns, and an agent's diff, a sandbox's output, a model's reply or a name
    in a config file can hold one. NUL becomes U+FFFD on every backend, so
    SQLite and PostgreSQL keep the same value and no write fails on it: here
    for SQL statements, and when set on a model object (see the end of this
    module), so the objects the store hands back say what was stored."""

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return without_nul(value)


class NulFreeString(_NulFree):
    impl = String
    cache_ok = True


class NulFreeText(_NulFree):
    impl = Text
    cache_ok = True


class Base(DeclarativeBase):
    # Deterministic constraint names: PostgreSQL needs them to drop constraints
    # in later migrations, and SQLite batch migrations need them to find them.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}

    def __repr__(self) -> str:
        pk = ", ".join(f"{c.name}={getattr(self, c.key, None)!r}" for c in self.__table__.primary_key)
        return f"{type(self).__name__}({pk})"


class Campaign(Base):
    """One evolution / evaluation / import / replay run and its budget."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(NulFreeString(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int | None]
    budget_usd: Mapped[float | None] = mapped_column(Float)
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0)
    """Running total kept by the store; `ArchiveStore.campaign_spend` is the source of truth."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    """Last sign of life of the runner; a 'running' campaign with a stale heartbeat is dead."""
    pid: Mapped[int | None]
    runner_host: Mapped[str | None] = mapped_column(String(255))
    """The machine `pid` is on: only there can a dead runner be told from a live one at once."""


class Agent(Base):
    """One archived coding agent: a commit in the code store plus its fate."""

    __tablename__ = "agents"
    __table_args__ = (
        Index(None, "campaign_id"),
        Index(None, "parent_id"),
        Index(None, "twin_of"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    generation: Mapped[int] = mapped_column(default=0)
    commit_sha: Mapped[str] = mapped_column(String(SHA_LEN))
    status: Mapped[str] = mapped_column(String(32))
    rejection_reason: Mapped[str | None] = mapped_column(NulFreeText)
    origin: Mapped[str] = mapped_column(String(32))
    proposal: Mapped[dict[str, Any] | None]
    """The diagnosis and improvement proposal that produced this agent."""
    diagnosis_target: Mapped[dict[str, Any] | None]
    score: Mapped[float | None] = mapped_column(Float)
    """Cached selection score (resolved fraction on the tasks it was evaluated on)."""
    heldout_score: Mapped[float | None] = mapped_column(Float)
    stage_reached: Mapped[int] = mapped_column(default=0)
    twin_of: Mapped[str | None] = mapped_column(String(ID_LEN), ForeignKey("agents.id"))
    """The earlier agent of the campaign whose code tree this agent's equals (None: its code is new)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TaskRun(Base, TaskRunOutcome):
    """One run of an agent on one task (or one self-modification / sanity run)."""

    __tablename__ = "task_runs"
    __table_args__ = (
        # A resumed campaign looks runs up by this key, so it can never run one
        # twice; another campaign (a later `dgm eval` of the same agent) runs its own.
        UniqueConstraint("campaign_id", "agent_id", "kind", "benchmark", "task_id", "stage", "attempt", "repeat",
                         name="uq_task_runs_run_key"),
        Index(None, "campaign_id"),
        Index(None, "agent_id"),
        Index(None, "task_id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    kind: Mapped[str] = mapped_column(String(32))
    benchmark: Mapped[str] = mapped_column(NulFreeString(200))
    task_id: Mapped[str] = mapped_column(NulFreeString(300))
    stage: Mapped[str] = mapped_column(NulFreeString(64))
    attempt: Mapped[int] = mapped_column(default=0)
    repeat: Mapped[int] = mapped_column(default=0, server_default="0")
    """Which sample of this agent on this task (0, 1, ... up to the stage's `repeats`)."""
    status: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(NulFreeString(200))
    tests_status: Mapped[dict[str, Any] | None]
    """{"FAIL_TO_PASS": {"success": [...], "failure": [...]}, "PASS_TO_PASS": {...}}"""
    patch: Mapped[str | None] = mapped_column(NulFreeText)
    error: Mapped[str | None] = mapped_column(NulFreeText)
    duration_s: Mapped[float | None] = mapped_column(Float)
    agent_duration_s: Mapped[float | None] = mapped_column(Float)
    test_duration_s: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    trajectory_artifact: Mapped[str | None] = mapped_column(String(ID_LEN))
    agent_log_artifact: Mapped[str | None] = mapped_column(String(ID_LEN))
    eval_log_artifact: Mapped[str | None] = mapped_column(String(ID_LEN))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class LLMCall(Base):
    """One model call, attributed and priced; its transcript is an artifact."""

    __tablename__ = "llm_calls"
    __table_args__ = (
        Index(None, "task_run_id", "seq"),
        Index(None, "campaign_id"),
        Index(None, "agent_id", "purpose"),
        Index(None, "request_hash"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"))
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    task_run_id: Mapped[str | None] = mapped_column(ForeignKey("task_runs.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int]
    """Order of the call within its task run (or agent + purpose), for replay."""
    model: Mapped[str] = mapped_column(NulFreeString(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    """sha256 of the canonical JSON request (model + messages + params)."""
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(NulFreeText)
    artifact_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    scripted: Mapped[bool] = mapped_column(Boolean, default=False)
    """The 'model' was a deterministic scripted stand-in, not a real LLM."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    priced: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """The model's price was known (its role's pricing or litellm's table); False: cost_usd is 0 but unknown."""
    api_base: Mapped[str | None] = mapped_column(NulFreeString(500))
    """The endpoint the call went to (its role's api_base); None: the provider's default."""


class Event(Base):
    """An append-only campaign log line (selection, admission, budget, errors...)."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "campaign_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"))
    agent_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GenerationStat(Base):
    """Archive-level statistics after each generation (progress and diversity)."""

    __tablename__ = "generation_stats"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    archive_size: Mapped[int]
    best_score: Mapped[float | None] = mapped_column(Float)
    mean_score: Mapped[float | None] = mapped_column(Float)
    coverage: Mapped[int]
    """Tasks solved by at least one archived agent."""
    coverage_fraction: Mapped[float] = mapped_column(Float)
    mean_jaccard_distance: Mapped[float | None] = mapped_column(Float)
    """Mean pairwise Jaccard distance between archived agents' solved-task sets."""
    spent_usd: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArchiveInfo(Base):
    """Facts about the archive itself: its id, and the directory holding its code and artifacts."""

    __tablename__ = "archive_info"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(NulFreeText)


def _set_without_nul(target: Any, value: Any, oldvalue: Any, initiator: Any) -> Any:
    return without_nul(value)


for _model in (Campaign, Agent, TaskRun, LLMCall, ArchiveInfo):
    for _column in _model.__table__.columns:
        if isinstance(_column.type, _NulFree):
            event.listen(getattr(_model, _column.key), "set", _set_without_nul, retval=True)
