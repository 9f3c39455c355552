"""Which directory holds an archive's agent code and artifacts, and proof that it is this archive's.

An archive is a database (rows) plus a directory (`agents.git`, artifacts,
and, by default, the SQLite file). The two must never be mixed up: a typo
in `--archive-dir`, a copied database, or two archives pointed at one
directory would silently show or write the wrong agents' code. So the
database records its directory and an archive id (`archive_info`), and the
directory carries the same id in a file (`archive-id`). Opening checks the
pair; the first opening records it. Refusals are `UsageError` / `NotFound`
naming the directory to give instead.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dgm.errors import ArchiveUnavailable, NotFound, UsageError

if TYPE_CHECKING:
    import sqlalchemy as sa

# What settles a directory (below `settled_directory`) reads and writes
# rows, and imports SQLAlchemy when it runs: the read-only opening of an
# SQLite archive (readonly.py) uses only `settled_directory`, without it.

ARCHIVE_ID_FILE = "archive-id"
"""In the archive directory: which archive database its code and artifacts belong to."""


def require_code_dir(root: Path, recorded: str | None = None) -> None:
    """NotFound unless `root` holds agent code (`recorded`: the directory the database names)."""
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


def settled_directory(info: dict[str, str], root: Path, *, follow_record: bool) -> Path | None:
    """The archive's directory when the database's record (`info`: its
    `archive_info` rows) and the directory's mark already agree, so opening
    has nothing to write; None when opening must settle them
    (`settle_directory`). UsageError if the directory's mark is damaged."""
    archive_id, recorded = info.get("archive_id"), info.get("archive_dir")
    if follow_record and recorded:
        root = Path(recorded)
    if archive_id is None or recorded != str(root.resolve()):
        return None
    return root if _read_directory_id(root) == archive_id else None


def _settle_directory_attempt(engine: sa.Engine, root: Path, *, follow_record: bool, create: bool,
                      db_inside: bool = False, last_try: bool = True) -> Path:
    """The directory holding this database's agent code and artifacts, checked
    to be its own; the first opening records it (and gives the archive an id).

    The database records its directory and id (`archive_info`), and the
    directory carries the same id (`archive-id`). A directory marked with
    another id, or one marked while this database has no record, belongs to
    another archive; a fresh directory is refused while the recorded one
    exists or while the archive has agents whose code it lacks.
    """
    from sqlalchemy import func, select
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from dgm.archive.code import AgentCodeStore
    from dgm.archive.models import Agent, ArchiveInfo

    with Session(engine) as session:
        info = {row.key: row.value for row in session.scalars(select(ArchiveInfo))}
    settled = settled_directory(info, root, follow_record=follow_record)
    if settled is not None:
        return settled
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
            require_code_dir(root, recorded)
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
                require_code_dir(root, recorded)
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
        require_code_dir(root, recorded)
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
    from sqlalchemy.orm import Session

    from dgm.archive.models import ArchiveInfo

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


def settle_directory(engine: sa.Engine, root: Path, **kwargs) -> Path:
    """The directory holding this database's agent code and artifacts (see
    `_settle_directory_attempt`), tried again if another process's first
    opening got in between; ArchiveUnavailable if they keep doing so."""
    from sqlalchemy.exc import IntegrityError

    attempts = 5
    for attempt in range(attempts):
        try:
            return _settle_directory_attempt(engine, root, last_try=attempt == attempts - 1, **kwargs)
        except (IntegrityError, _Raced) as exc:
            if attempt == attempts - 1:
                raise ArchiveUnavailable("other processes kept changing where its code is recorded") from None
            if isinstance(exc, _Raced) and exc.wait:
                time.sleep(0.2)
    raise AssertionError("unreachable")


def _claim(engine: sa.Engine, archive_id: str, directory: str, *, first: bool = False) -> str:
    """Record `archive_id` and `directory`; with `first`, only if no id is recorded
    yet (else `_Raced`: another opening claimed it). Returns the id."""
    from sqlalchemy.orm import Session

    from dgm.archive.models import ArchiveInfo

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


