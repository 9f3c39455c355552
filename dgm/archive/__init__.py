"""The archive: SQL rows (store), agent code (git), and content-addressed artifacts.

Open it with `ArchiveStore.open(url, root)`; that object is the only writer.
Browsing opens it with `readonly.open_for_browsing`, which reads an SQLite
archive without SQLAlchemy.

The names below are imported when first used, not with the package: its
light modules (records, reads, readonly) must not pull in SQLAlchemy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_HOMES = {
    "ArtifactInfo": "dgm.archive.artifacts",
    "ArtifactStore": "dgm.archive.artifacts",
    "canonical_json": "dgm.archive.artifacts",
    "AgentCodeStore": "dgm.archive.code",
    "Agent": "dgm.archive.models",
    "Campaign": "dgm.archive.models",
    "Event": "dgm.archive.models",
    "GenerationStat": "dgm.archive.models",
    "LLMCall": "dgm.archive.models",
    "TaskRun": "dgm.archive.models",
    "ArchiveStore": "dgm.archive.store",
    "llm_request_hash": "dgm.archive.store",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from dgm.archive.artifacts import ArtifactInfo, ArtifactStore, canonical_json
    from dgm.archive.code import AgentCodeStore
    from dgm.archive.models import Agent, Campaign, Event, GenerationStat, LLMCall, TaskRun
    from dgm.archive.store import ArchiveStore, llm_request_hash
