"""Opening an archive's database: engines, SQLite and PostgreSQL settings, migrations.

SQLite (the default) runs in WAL mode with write transactions opened as
`BEGIN IMMEDIATE`: a writer takes the database's write lock before it reads,
so read-then-write steps (e.g. "is this task run done already?") cannot race
with another process, and waiting writers queue on the busy timeout instead of
failing with a lock-upgrade deadlock. A session asks for that with the
execution option `dgm_write=True`. PostgreSQL gets a connect timeout and
pre-pinged pooled connections.

Alembic migrates the schema, but only when it is behind: an archive already
at `SCHEMA_HEAD` is opened without importing Alembic. Failures become one-line
`ArchiveUnavailable` / `NotFound` errors that name the archive.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from dgm.archive.identity import require_code_dir, settle_directory
from dgm.archive.records import SCHEMA_HEAD, SQLITE_BUSY_TIMEOUT_S
from dgm.errors import ArchiveUnavailable, NotFound, UsageError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
PG_CONNECT_TIMEOUT_S = 5

# Alembic's command API goes through module-global proxies (alembic.context),
# so two threads must not run it at once.
_alembic_lock = threading.Lock()


def open_database(url: str | None, root: Path | str, *, create: bool, root_given: bool
                  ) -> tuple[sa.Engine, Path, str]:
    """The engine, directory and shown (password-masked) URL of the archive, created and
    migrated if needed; ArchiveUnavailable if impossible.

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
            require_code_dir(root)
    made_root = False
    try:
        if create and not follows_record:  # else the directory the archive recorded
            made_root = not root.exists()
            root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveUnavailable(f"cannot open archive {shown}: cannot create directory {root}: {exc.strerror}") from None
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ArchiveUnavailable(f"cannot open archive {shown}: {_open_failure(url, exc)}") from None
    if not create:
        _require_schema(engine, url, shown)
    try:
        _migrate(engine)
        sqlite_file = _sqlite_file(url)
        db_inside = sqlite_file is not None and sqlite_file.resolve().parent == root.resolve()
        root = settle_directory(engine, root, follow_record=follows_record, create=create, db_inside=db_inside)
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
    return engine, root, shown


def create_engine(url: str) -> sa.Engine:
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


@contextmanager
def translate_db_errors(url: str) -> Iterator[None]:
    # A database that went away mid-campaign is an environment problem, not a bug.
    try:
        yield
    except OperationalError as exc:
        reason = short_error(exc)
        if "database is locked" in reason:
            # dgm's own writers queue on the busy timeout: only a lock held this long by something else gets here.
            reason = (f"database is locked: another process has held its write lock for over "
                      f"{SQLITE_BUSY_TIMEOUT_S} s (an open sqlite3 shell or transaction?)")
        raise ArchiveUnavailable(f"archive {url}: {reason}") from exc


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
    if sqlite_file is not None and "unable to open database file" in short_error(exc):
        directory = sqlite_file.resolve().parent
        if directory.is_dir() and not os.access(directory, os.W_OK):
            return (f"unable to open database file: its directory {directory} is not writable, and SQLite must "
                    "create its -wal and -shm files there even to read (copy the archive somewhere writable)")
    return short_error(exc)


def short_error(exc: BaseException) -> str:
    """First line of the driver's message, without SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    line = text.splitlines()[0].strip()
    return line[:300]
