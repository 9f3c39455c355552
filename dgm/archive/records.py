"""The archive's rows as plain records: what reads that need no ORM get back.

The browsing commands (`dgm ls`, `status`, `show`) are typed more than any
other, and importing SQLAlchemy and building the models cost more than all
the rest of such a command. They read these records instead: one class per
table, with the models' attribute names, filled from plain SQL rows and
decoded as the models' column types decode them: JSON text parsed, datetimes
timezone-aware UTC (models.UTCDateTime), booleans as bools. Importing this
module imports no SQL library.

tests/unit/test_archive_reads.py checks the columns here against models.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, NamedTuple

from dgm.errors import NotFound, UsageError

SCHEMA_HEAD = "0006"
"""The newest migration's revision (a test checks it against Alembic's head):
an archive already there is opened without importing Alembic, and only such
an archive is read without SQLAlchemy (reads.py)."""

SQLITE_BUSY_TIMEOUT_S = 30
"""How long an SQLite connection waits for a lock (a writer, a checkpoint) before it
fails: the store's connections and the read-only browsing ones alike."""


def has_own_code(meta: dict[str, Any] | None) -> bool:
    """From an agent's meta: False for a child rejected before its code was
    committed (the loop sets `own_commit` False until it is), whose commit
    is still its parent's. Agents without the key (seeds, imports, agent
    directories) have code of their own."""
    return (meta or {}).get("own_commit", True) is not False


def utc(value: datetime | str | None) -> datetime | None:
    """A stored datetime as models.UTCDateTime returns it: SQLite hands back
    naive ISO text (parsed as SQLAlchemy's SQLite DateTime parses it), other
    databases datetimes."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _json_text(value: Any) -> Any:
    return None if value is None else json.loads(value)


def _as_is(value: Any) -> Any:
    return value


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def one_by_prefix(matches: list[Any], id_or_prefix: str, label: str) -> Any:
    """The one row an id prefix names, from the rows whose id starts with it
    (sorted, a few more than shown); UsageError when ambiguous, NotFound when none."""
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(m.id for m in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise UsageError(f"{label} id prefix {id_or_prefix!r} is ambiguous: {shown}")
    raise NotFound(f"no {label} with id {id_or_prefix!r}")


class TaskRunOutcome:
    """What a task run's status says, for the ORM row and the record alike."""

    __slots__ = ()

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"


class Record:
    """One row of `TABLE`, with an attribute per column of `COLUMNS`."""

    TABLE = ""
    COLUMNS: tuple[str, ...] = ()
    JSON: frozenset[str] = frozenset()
    DATETIMES: frozenset[str] = frozenset()
    BOOLS: frozenset[str] = frozenset()
    __slots__ = ()

    @classmethod
    def select(cls, where: str = "", order_by: str = "") -> str:
        """`SELECT <its columns> FROM <its table>` with the given WHERE and ORDER BY (SQL, `:name` parameters)."""
        sql = f"SELECT {', '.join(cls.COLUMNS)} FROM {cls.TABLE}"
        return sql + (f" WHERE {where}" if where else "") + (f" ORDER BY {order_by}" if order_by else "")

    @classmethod
    def decoders(cls, json_as_text: bool) -> tuple[Any, ...]:
        """One function per column turning the driver's value into the model's
        (`json_as_text`: the driver returns JSON columns as text, as SQLite's does)."""
        json_decoder = _json_text if json_as_text else _as_is
        return tuple(json_decoder if c in cls.JSON else utc if c in cls.DATETIMES else _bool if c in cls.BOOLS
                     else _as_is for c in cls.COLUMNS)

    @classmethod
    def from_row(cls, row: tuple[Any, ...], decoders: tuple[Any, ...]):
        record = cls.__new__(cls)
        for name, decode, value in zip(cls.COLUMNS, decoders, row):
            object.__setattr__(record, name, decode(value))
        return record

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={getattr(self, 'id', None)!r})"


class CampaignRecord(Record):
    TABLE = "campaigns"
    COLUMNS = ("id", "name", "kind", "status", "config", "seed", "budget_usd", "spent_usd", "created_at",
               "updated_at", "finished_at", "heartbeat_at", "pid", "runner_host")
    JSON = frozenset({"config"})
    DATETIMES = frozenset({"created_at", "updated_at", "finished_at", "heartbeat_at"})
    __slots__ = COLUMNS


class AgentRecord(Record):
    TABLE = "agents"
    COLUMNS = ("id", "campaign_id", "parent_id", "generation", "commit_sha", "status", "rejection_reason", "origin",
               "proposal", "diagnosis_target", "score", "heldout_score", "stage_reached", "twin_of", "created_at",
               "updated_at", "meta")
    JSON = frozenset({"proposal", "diagnosis_target", "meta"})
    DATETIMES = frozenset({"created_at", "updated_at"})
    __slots__ = COLUMNS


class TaskRunRecord(TaskRunOutcome, Record):
    TABLE = "task_runs"
    COLUMNS = ("id", "campaign_id", "agent_id", "kind", "benchmark", "task_id", "stage", "attempt", "repeat", "status",
               "model", "tests_status", "patch", "error", "duration_s", "agent_duration_s", "test_duration_s",
               "cost_usd", "trajectory_artifact", "agent_log_artifact", "eval_log_artifact", "created_at", "finished_at")
    JSON = frozenset({"tests_status"})
    DATETIMES = frozenset({"created_at", "finished_at"})
    __slots__ = COLUMNS


class LLMCallRecord(Record):
    TABLE = "llm_calls"
    COLUMNS = ("id", "campaign_id", "agent_id", "task_run_id", "purpose", "seq", "model", "request_hash",
               "prompt_tokens", "completion_tokens", "cost_usd", "latency_s", "status", "error", "artifact_id",
               "scripted", "created_at", "priced", "api_base")
    DATETIMES = frozenset({"created_at"})
    BOOLS = frozenset({"scripted", "priced"})
    __slots__ = COLUMNS


class EventRecord(Record):
    TABLE = "events"
    COLUMNS = ("id", "campaign_id", "agent_id", "kind", "payload", "created_at")
    JSON = frozenset({"payload"})
    DATETIMES = frozenset({"created_at"})
    __slots__ = COLUMNS


class LineageRow(NamedTuple):
    """An agent without its JSON columns and datetimes: what whole-campaign views need, cheaply."""

    id: str
    parent_id: str | None
    generation: int
    status: str
    origin: str
    score: float | None
    heldout_score: float | None
    stage_reached: int
    commit_sha: str
    twin_of: str | None
