"""Alembic environment for the archive schema.

`ArchiveStore.open` runs this with an open connection in
`config.attributes["connection"]`, already inside a transaction that holds the
database's write lock (SQLite `BEGIN IMMEDIATE`), so concurrent openers
serialise and every migration is all-or-nothing. Run from the command line
(developers only), it connects to `-x url=...` itself.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from dgm.archive.models import Base, UTCDateTime

# Any constant will do: it only has to be the same for every dgm process.
_PG_MIGRATION_LOCK_KEY = 0x64676D  # "dgm"


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Keep revisions self-contained: a migration must not import today's models.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=True,  # SQLite can only ALTER by copying tables
        render_item=_render_item,
    )
    if connection.dialect.name == "postgresql":
        # Several workers may open a fresh database at once; only one migrates.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK_KEY})")
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database with: alembic -x url=sqlite:///path/to/dgm.db ...")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
_main()
