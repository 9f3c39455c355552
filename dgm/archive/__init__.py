"""The archive: SQL rows (store), agent code (git), and content-addressed artifacts.

Open it with `ArchiveStore.open(url, root)`; that object is the only writer.
"""

from dgm.archive.artifacts import ArtifactInfo, ArtifactStore, canonical_json
from dgm.archive.code import AgentCodeStore
from dgm.archive.models import Agent, Campaign, Event, GenerationStat, LLMCall, TaskRun
from dgm.archive.store import ArchiveStore, llm_request_hash

__all__ = [
    "Agent",
    "AgentCodeStore",
    "ArchiveStore",
    "ArtifactInfo",
    "ArtifactStore",
    "Campaign",
    "Event",
    "GenerationStat",
    "LLMCall",
    "TaskRun",
    "canonical_json",
    "llm_request_hash",
]
