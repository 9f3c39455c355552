"""Opening an archive to browse it: read-only, and without SQLAlchemy when it can be.

`open_for_browsing` is what `dgm ls`, `status` and `show` open. An SQLite
archive that is ready to read as it is (its file exists, its schema is at
`SCHEMA_HEAD`, its database and directory already name each other, its
agent code is there) is read through the standard library's sqlite3, opened
read-only (`mode=ro`): nothing imports SQLAlchemy, and browsing never
writes. Anything else (PostgreSQL, a schema to migrate, a directory to
settle, a missing file, an unusual URL) goes the way every other command
goes, `ArchiveStore.open`, which says what is wrong or settles it, with
the same reads (reads.py) run through its connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dgm.archive.reads import ArchiveReads
from dgm.archive.records import SCHEMA_HEAD, SQLITE_BUSY_TIMEOUT_S
from dgm.errors import ArchiveUnavailable

_PLAIN_SQLITE_URL = "sqlite:///"


def open_for_browsing(url: str | None, root: Path | str, *, root_given: bool) -> ArchiveReads:
    """The archive, to read; NotFound if there is none (browsing never makes one).

    `url` None: the SQLite file in `root`; `root_given` False: a database
    URL's archive uses the directory it recorded (as `ArchiveStore.open`).
    """
    reads = open_sqlite_readonly(url, Path(root), root_given=root_given)
    if reads is not None:
        return reads
    from dgm.archive.store import ArchiveStore

    store = ArchiveStore.open(url, root=root, create=False, root_given=root_given)
    return ArchiveReads(store.fetch, json_as_text=store.engine.dialect.name == "sqlite", url=store.url,
                        root=store.root, code=store.code, close=store.close)


def open_sqlite_readonly(url: str | None, root: Path, *, root_given: bool) -> ArchiveReads | None:
    """The archive read through a read-only sqlite3 connection, or None when it
    is not an SQLite archive ready to be read as it is (see the module's docstring)."""
    given_url = url
    url = url or f"{_PLAIN_SQLITE_URL}{root.resolve() / 'dgm.db'}"
    if not url.startswith(_PLAIN_SQLITE_URL) or any(c in url for c in "?#%"):
        return None  # another database, driver or URL option: SQLAlchemy's to read
    database = url[len(_PLAIN_SQLITE_URL):]  # as SQLAlchemy reads such a URL (nothing to unquote)
    path = Path(database)
    if database in ("", ":memory:") or not path.is_file():
        return None
    shown = _PLAIN_SQLITE_URL + quote(database, safe=" +/")  # as SQLAlchemy shows it
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                               timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        directory = _ready_directory(conn, root, follow_record=given_url is not None and not root_given)
    except sqlite3.Error:
        directory = None
    except BaseException:
        conn.close()
        raise
    if directory is None:
        conn.close()
        return None
    from dgm.archive.code import AgentCodeStore

    def fetch(sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            # Gone, locked or damaged since it was opened: an environment problem, said in a line.
            raise ArchiveUnavailable(f"archive {shown}: {str(exc).strip().splitlines()[0][:300]}") from exc

    return ArchiveReads(fetch, json_as_text=True, url=shown, root=directory,
                        code=AgentCodeStore(directory / "agents.git"), close=conn.close)


def _ready_directory(conn: sqlite3.Connection, root: Path, *, follow_record: bool) -> Path | None:
    """The archive's directory if the database is at the current schema and it
    and its directory already name each other, with agent code in it; else None."""
    from dgm.archive.identity import settled_directory

    versions = [v for (v,) in conn.execute("SELECT version_num FROM alembic_version")]
    if versions != [SCHEMA_HEAD]:
        return None
    info = dict(conn.execute("SELECT key, value FROM archive_info").fetchall())
    directory = settled_directory(info, root, follow_record=follow_record)
    if directory is None or not (directory / "agents.git" / "HEAD").is_file():
        return None  # opening would record, mark or create something: ArchiveStore.open does that
    return directory
