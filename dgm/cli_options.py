"""Options and helpers shared by every group of `dgm` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

ArchiveOpt = typer.Option(
    None, "--archive", envvar="DGM_ARCHIVE",
    help="SQLAlchemy URL of the archive database (default: sqlite:///<archive-dir>/dgm.db).")
ArchiveDirOpt = typer.Option(
    Path("archive"), "--archive-dir", envvar="DGM_ARCHIVE_DIR",
    help="Directory for agent code (agents.git), artifacts and the default SQLite file.")


def open_store(archive: Optional[str], archive_dir: Path):
    from dgm.archive.store import ArchiveStore

    return ArchiveStore.open(archive, root=archive_dir)
