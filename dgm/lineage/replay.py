"""Replays' recordings and reports: which run a replay starts from, what it
served, and how the replayed requests compare (the run itself: `dgm.runs.replay`).

`--recorded` answers every LLM request of the agent with the response recorded
for the same step of an earlier run (`Replayer`), so the agent, given the same
code and task, must produce the same patch byte for byte. A divergence is the
first step whose request no longer matches the recording.

Honest divergence reporting: the seed agent's later requests contain command
outputs, and command outputs can hold timings (pytest's "in 0.01s"), object
addresses or dates that change on every run. So two checks are reported:

- *exact*: the request's sha256 differs from the recorded one (the Replayer's
  own check, unmodified);
- *normalised*: the requests still differ after masking volatile numbers
  (decimals, hex addresses, timestamps) in both. Only this one is called a
  divergence in the verdict; an exact-only difference is shown as what it is.

The replay run is stored (kind 'replay') in its own campaign of kind 'replay',
beside the run it replays; its LLM calls are recorded too (model
`replay:<model>`, cost 0).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING

from dgm.errors import NotFound, UsageError

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore

# Order matters: timestamps before bare decimals.
_VOLATILE = [
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<timestamp>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"), "<clock>"),
    (re.compile(r"\b0x[0-9a-fA-F]{4,}\b"), "<address>"),
    # Unix time in s, ms, us or ns (`date +%s%N`, time.time()): 2001 to 2286, so never a test count.
    (re.compile(r"\b[1-9]\d{9}(?:\d{3}){0,3}(?:\.\d+)?\b"), "<epoch>"),
    (re.compile(r"\d+\.\d+"), "<decimal>"),
]
VOLATILE_NOTE = ("decimals (timings such as pytest's 'in 0.01s'), hex addresses, clock times, timestamps and "
                 "Unix times are masked before the normalised comparison; other integers are compared as they are")


def normalise_volatile(text: str) -> str:
    for pattern, mask in _VOLATILE:
        text = pattern.sub(mask, text)
    return text


def _normalised_request(request: dict) -> str:
    return normalise_volatile(json.dumps(
        {"model": request.get("model"), "messages": request.get("messages"), "params": request.get("params") or {}},
        sort_keys=True, ensure_ascii=False))


@dataclass
class Recording:
    run: Any
    """The TaskRun whose LLM calls are served."""
    steps: list[tuple[str, dict]]
    """(request hash, response) per successful call, in seq order."""
    requests: list[dict]


@dataclass
class ReplayReport:
    mode: str
    campaign_id: str
    run: Any
    source: Any | None
    recorded_steps: int = 0
    replayed_steps: int = 0
    patch_identical: bool | None = None
    exact_divergence: dict | None = None
    divergence: dict | None = None
    """Normalised: the request differs beyond volatile numbers (or the request counts differ)."""
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.mode == "live":
            if self.source is None:
                return f"live run finished: {self.run.status}"
            same = "the same patch as" if self.patch_identical else "a different patch from"
            return f"live run finished: {self.run.status}; {same} run {self.source.id}"
        if self.divergence is not None:
            return f"diverged at step {self.divergence['step'] + 1}: {self.divergence['reason']}"
        if self.exact_divergence is not None:
            return ("faithful up to volatile numbers: from step "
                    f"{self.exact_divergence['step'] + 1} the requests' hashes differ, but only in masked "
                    "timings/addresses/timestamps")
        return "faithful: every request matched the recording exactly"

    def as_dict(self) -> dict:
        return {
            "mode": self.mode, "campaign_id": self.campaign_id, "task_run_id": self.run.id,
            "source_run_id": self.source.id if self.source else None, "status": self.run.status,
            "source_status": self.source.status if self.source else None,
            "patch_identical": self.patch_identical, "recorded_steps": self.recorded_steps,
            "replayed_steps": self.replayed_steps, "exact_divergence": self.exact_divergence,
            "divergence": self.divergence, "verdict": self.verdict, "normalisation": VOLATILE_NOTE,
            "notes": self.notes,
        }


def default_source_run(store: ArchiveStore, agent, task_id: str):
    """The run a replay starts from by default: the agent's latest finished
    evaluation run on the task; failing that, its latest live replay there.

    Never a recorded replay: that may have served another run's recording
    (`--run`), and a later default replay would chain on to it, reporting
    'faithful' to the wrong recording.
    """
    run = store.latest_finished_run(agent.id, task_id, kinds=("task",))
    if run is not None:
        return run
    replays = store.list_task_runs(agent_id=agent.id, task_id=task_id, kind="replay")
    for candidate in sorted(replays, key=lambda r: r.finished_at or r.created_at, reverse=True):
        if candidate.status != "running" and (store.get_campaign(candidate.campaign_id).config or {}).get("mode") == "live":
            return candidate
    return None


def find_source_run(store: ArchiveStore, agent, task_id: str, run_id: str | None = None):
    """The run to replay: `run_id`, else `default_source_run`."""
    if run_id is not None:
        return store.get_task_run(run_id)
    run = default_source_run(store, agent, task_id)
    if run is None:
        raise NotFound(f"agent {agent.id} has no finished run on task {task_id} to replay; "
                       "use --live, or --run RUN_ID to serve another run's recording")
    return run


def load_recording(store: ArchiveStore, run) -> Recording:
    calls = [c for c in store.list_llm_calls(run.id) if c.status == "ok"]
    if not calls:
        raise UsageError(f"task run {run.id} has no recorded LLM calls to replay")
    steps: list[tuple[str, dict]] = []
    requests: list[dict] = []
    for call in calls:
        if not call.artifact_id:
            raise UsageError(f"LLM call {call.id} of run {run.id} has no recorded transcript; cannot replay it")
        blob = store.artifacts.get_json(call.artifact_id)
        if blob.get("response") is None:
            raise UsageError(f"LLM call {call.id} of run {run.id} has no recorded response")
        steps.append((call.request_hash, blob["response"]))
        requests.append(blob.get("request") or {})
    return Recording(run=run, steps=steps, requests=requests)


def _first_difference(a: str, b: str, context: int = 60) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    lo = max(0, i - context // 2)
    return f"recorded …{a[lo:i + context]!r}… vs replay …{b[lo:i + context]!r}…"


def compare_requests(recorded: list[dict], replayed: list[dict]) -> dict | None:
    """First step whose requests differ after masking volatile numbers, or None."""
    for step, (want, got) in enumerate(zip(recorded, replayed)):
        a, b = _normalised_request(want), _normalised_request(got)
        if a != b:
            return {"step": step, "reason": "request differs from the recording (beyond volatile numbers): "
                    + _first_difference(a, b)}
    if len(replayed) < len(recorded):
        return {"step": len(replayed), "reason": f"the agent stopped after {len(replayed)} of "
                f"{len(recorded)} recorded requests"}
    return None
