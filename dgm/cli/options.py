"""Options and helpers shared by every group of `dgm` commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

ArchiveOpt = typer.Option(
    None, "--archive", envvar="DGM_ARCHIVE",
    help="SQLAlchemy URL of the archive database (default: sqlite:///<archive-dir>/dgm.db).")
ArchiveDirOpt = typer.Option(
    None, "--archive-dir", envvar="DGM_ARCHIVE_DIR", show_default="archive",
    help="Directory for agent code (agents.git), artifacts and the default SQLite file. With --archive, "
         "the directory that archive recorded, wherever you run dgm.")
DEFAULT_ARCHIVE_DIR = Path("archive")
# `dgm run` and `dgm resume` (where it holds from the resume on).
ExecutorOpt = typer.Option(
    None, "--executor", help="Where task runs execute: threads (this machine, default) or ray (the nodes of a "
                             "Ray cluster offering the dgm_sandbox resource; pip install 'dgm\\[ray]'; the archive, "
                             "keys and budget stay here; docs/cluster.md). As \\[campaign.executor] kind.")
RayAddressOpt = typer.Option(
    None, "--ray-address", help="With --executor ray: the cluster, auto (joined with `ray start` here), local, "
                                "or ray://HOST:10001. As \\[campaign.executor] address.")


def open_store(archive: Optional[str], archive_dir: Optional[Path], *, create: bool = True):
    """The archive; with `create=False` (commands that read what a campaign
    left) one that does not exist yet is an error, not a new empty one."""
    from dgm.archive.store import ArchiveStore

    return ArchiveStore.open(archive, root=archive_dir or DEFAULT_ARCHIVE_DIR, create=create,
                             root_given=archive_dir is not None)


def open_reads(archive: Optional[str], archive_dir: Optional[Path]):
    """The archive, to browse (never created): what `dgm ls`, `status` and
    `show` read, without SQLAlchemy for an SQLite archive ready to be read."""
    from dgm.archive.readonly import open_for_browsing

    return open_for_browsing(archive, archive_dir or DEFAULT_ARCHIVE_DIR, root_given=archive_dir is not None)


def check_output_file(path: Path, option: str) -> None:
    """Make sure `path` can be written (creating its directory), or fail in
    one line: checked before the work, not after it."""
    from dgm.errors import UsageError

    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory; give a file path")
    blocking = next((d for d in [path.parent, *path.parent.parents] if d.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UsageError(f"{option} {path}: {blocking} is a file, not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create its directory: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {path}: not writable")
    # Permission bits are not the whole story (root, /proc, read-only mounts): try it.
    existed = path.exists()
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write it: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)
