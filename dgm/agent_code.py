"""Agent code on the host: checking and committing an agent directory to the
code store, and materialising commits once for sandboxes to mount.

Its own module because the evaluator, the campaign loop, self-modification
and the CLI all need it, and none of them is where agent code belongs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dgm.errors import ArchiveUnavailable, UsageError
from dgm.sandbox.testbed import links_leading_out, make_tree_readable, special_files

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore

SEED_AGENT_DIR = Path(__file__).resolve().parent / "seed_agent"
IGNORED_NAMES = ("__pycache__", ".pytest_cache", ".git")


class AgentCodeCache:
    """Agent commits materialised once on the host, mounted read-only into sandboxes."""

    def __init__(self, store: ArchiveStore):
        self.store = store
        # Absolute: Docker refuses relative bind-mount sources.
        self.root = Path(store.root).resolve() / "cache" / "agents"
        self._lock = threading.Lock()

    def path(self, commit_sha: str) -> str:
        dest = self.root / commit_sha
        with self._lock:
            if not dest.is_dir():
                if not self.store.code.has(commit_sha):
                    # The database names a commit its code store lacks: the archive is
                    # incomplete (often: a different --archive-dir), not the agent wrong.
                    raise ArchiveUnavailable(
                        f"agent code {commit_sha[:12]} is missing from {self.store.code.path}; is the archive "
                        "directory (--archive-dir) the one this campaign was started with?")
                self.root.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{commit_sha[:12]}-", dir=self.root))
                try:
                    self.store.code.materialize(commit_sha, str(tmp))
                    make_tree_readable(tmp)  # the sandbox's agent user (uid 1000) reads it
                    os.replace(tmp, dest)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
        return str(dest)


def check_agent_dir(path: Path) -> None:
    """An agent directory holds main.py and only files, directories and links:
    a FIFO, socket or device cannot be copied (reading a FIFO would block)."""
    if not (path / "main.py").is_file():
        raise UsageError(f"agent directory {path} has no main.py (see the agent contract in the README)")
    special = special_files(path, IGNORED_NAMES)
    if special:
        entry, kind = special[0]
        raise UsageError(f"agent directory {path}: {entry} is {kind}; agent code may hold only files, "
                         "directories and links")


def commit_agent_dir(store: ArchiveStore, path: Path, message: str, parent_sha: str | None = None) -> str:
    """Commit an agent directory to the code store (ignoring caches)."""
    check_agent_dir(path)
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "agent"
        # Links are kept as links, as the code store keeps them: never followed out of the directory.
        shutil.copytree(path, clean, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED_NAMES, "*.pyc"))
        escaping = links_leading_out(clean)
        if escaping:
            raise UsageError(f"agent directory {path}: {escaping[0]} leads out of it (agent code must be "
                             "self-contained)")
        return store.code.commit_tree(str(clean), parent_sha=parent_sha, message=message)
