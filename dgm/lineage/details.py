"""Everything worth knowing about one agent, as plain data (for `dgm show` and the explorer).

A handful of indexed queries per agent, whatever the archive's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dgm.archive.records import has_own_code as archived_has_own_code
from dgm.bench.tests_status import TEST_CONFIG_KEPT_OUT_KEY
from dgm.stats.intervals import interval_fields

if TYPE_CHECKING:
    from dgm.archive.reads import ArchiveReader
    from dgm.archive.models import Agent, TaskRun
    from dgm.archive.store import ArchiveStore


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def tests_fraction(tests_status: dict | None, key: str) -> str | None:
    part = (tests_status or {}).get(key)
    if not part:
        return None
    ok, bad = len(part.get("success", [])), len(part.get("failure", []))
    return f"{ok}/{ok + bad}"


def grading_note(tests_status: dict | None) -> str | None:
    """A line saying which test configuration files the grading kept out of a run's patch, if any."""
    kept = (tests_status or {}).get(TEST_CONFIG_KEPT_OUT_KEY) or []
    if not kept:
        return None
    named = ", ".join(kept[:3]) + (f" and {len(kept) - 3} more" if len(kept) > 3 else "")
    return f"not graded: its changes to {named} (test configuration belongs to the benchmark)"


def run_summary(run, unpriced_calls: int = 0) -> dict[str, Any]:
    """`unpriced_calls`: how many of its calls had no known price (its cost then says `unpriced`)."""
    return {
        "id": run.id, "campaign_id": run.campaign_id, "kind": run.kind, "benchmark": run.benchmark,
        "task_id": run.task_id, "stage": run.stage, "attempt": run.attempt, "status": run.status,
        "model": run.model, "f2p": tests_fraction(run.tests_status, "FAIL_TO_PASS"),
        "p2p": tests_fraction(run.tests_status, "PASS_TO_PASS"),
        "patch_lines": len((run.patch or "").splitlines()), "duration_s": run.duration_s, "cost_usd": run.cost_usd,
        "unpriced_calls": unpriced_calls, "error": run.error, "grading_note": grading_note(run.tests_status), "has_trajectory": bool(run.trajectory_artifact),
        "has_agent_log": bool(run.agent_log_artifact), "has_eval_log": bool(run.eval_log_artifact),
        "created_at": _iso(run.created_at), "finished_at": _iso(run.finished_at),
    }


def mark_cut_short(store: ArchiveStore, runs: list[dict[str, Any]]) -> None:
    """Runs (`run_summary`s) still `running` whose campaign's runner is not
    alive were cut short by a stop or a kill: shown as `unfinished`, with
    `cut_short` saying what happens to them, not as running."""
    from dgm.liveness import runner_checks_in

    campaigns: dict[str | None, Any] = {}
    for run in runs:
        if run["status"] != "running":
            continue
        cid = run["campaign_id"]
        if cid not in campaigns:
            campaigns[cid] = store.get_campaign(cid) if cid else None
        campaign = campaigns[cid]
        if campaign is not None and runner_checks_in(campaign):
            continue
        run["status"] = "unfinished"
        run["cut_short"] = ("cut short when its campaign stopped; `dgm resume` redoes it"
                            if campaign is not None and campaign.kind == "evolution"
                            else "cut short when its run stopped; it stays unfinished")


def call_summary(call) -> dict[str, Any]:
    return {
        "id": call.id, "task_run_id": call.task_run_id, "purpose": call.purpose, "seq": call.seq,
        "model": call.model, "status": call.status, "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens, "cost_usd": call.cost_usd, "latency_s": call.latency_s,
        "scripted": call.scripted, "priced": call.priced, "api_base": call.api_base,
        "error": call.error, "has_transcript": bool(call.artifact_id),
        "request_hash": call.request_hash, "created_at": _iso(call.created_at),
    }


# Where agents put what the model replied at a step: the seed agent writes
# "response"; a descendant may have renamed it.
REPLY_KEYS = ("response", "reply", "thought", "content", "message")


def step_reply(step: dict) -> str | None:
    """What the model said at this trajectory step (the agent wrote the
    trajectory, so the key and type vary); None when the step holds none."""
    for key in REPLY_KEYS:
        value = step.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            return value["content"]
    return None


def step_notes(step: dict) -> list[str]:
    """Why a step holds no command, or what happened to its reply, in words."""
    notes = []
    if step.get("cut_at_output_limit"):
        notes.append("reply cut at the output limit")
    count = step.get("format_error")
    if isinstance(count, int) and not isinstance(count, bool) and step.get("command") is None:
        notes.append(f"no command run: the reply held {count} bash blocks, not 1")
    return notes


@dataclass
class RunDetails:
    """One task run and what it left, read from the archive once: the plain
    data both `dgm show-run` and the explorer's run view render. A part the
    archive cannot give back (artifact missing or damaged) is None, and
    `unreadable` says why, so the rest of the run can still be shown."""

    run: TaskRun
    summary: dict[str, Any]
    """`run_summary`, a run cut short marked as such (`mark_cut_short`)."""
    trajectory_text: str | None
    """The trajectory as the agent wrote it (UTF-8, undecodable bytes replaced); None if none kept or unreadable."""
    trajectory: dict[str, Any] | None
    """The trajectory as a JSON object (`load_trajectory`); None if none kept, unreadable, or not an object."""
    agent_log: str | None
    eval_log: str | None
    llm_calls: list[dict[str, Any]]
    """`call_summary` of each of the run's LLM calls, in order."""
    unreadable: dict[str, str]
    """Part ("trajectory", "agent_log", "eval_log") -> why its artifact cannot be read."""


def run_details(store: ArchiveStore, run: TaskRun) -> RunDetails:
    """Everything recorded about one task run (see `RunDetails`)."""
    from dgm.errors import DgmError
    from dgm.sandbox.agent_run import load_trajectory

    unreadable: dict[str, str] = {}

    def artifact(part: str, artifact_id: str | None) -> bytes | None:
        if not artifact_id:
            return None
        try:
            return store.artifacts.get(artifact_id)
        except DgmError as exc:
            unreadable[part] = str(exc)
            return None

    def text(raw: bytes | None) -> str | None:
        return raw.decode("utf-8", errors="replace") if raw is not None else None

    raw_trajectory = artifact("trajectory", run.trajectory_artifact)
    agent_log = text(artifact("agent_log", run.agent_log_artifact))
    eval_log = text(artifact("eval_log", run.eval_log_artifact))
    calls = store.list_llm_calls(run.id)
    summary = run_summary(run, sum(not c.priced for c in calls))
    mark_cut_short(store, [summary])
    return RunDetails(
        run=run, summary=summary, trajectory_text=text(raw_trajectory),
        trajectory=load_trajectory(raw_trajectory) if raw_trajectory is not None else None,
        agent_log=agent_log, eval_log=eval_log,
        llm_calls=[call_summary(c) for c in calls], unreadable=unreadable,
    )


def has_own_code(agent) -> bool:
    """False for a child rejected before its code was committed: its commit
    is still its parent's, so its "code" is not its own to show or run."""
    return archived_has_own_code(agent.meta)


def require_own_code(agent) -> None:
    """UsageError for an agent with no code of its own (see `has_own_code`)."""
    if not has_own_code(agent):
        from dgm.errors import UsageError

        why = f" ({agent.rejection_reason})" if agent.rejection_reason else ""
        raise UsageError(f"agent {agent.id} has no code of its own: it was rejected before its code was "
                         f"committed{why}; `dgm show {agent.id}` shows the change it attempted")


def require_runnable(store: ArchiveStore, agent: Agent) -> None:
    """UsageError unless the agent has code of its own with a main.py (the agent contract)."""
    require_own_code(agent)
    if "main.py" not in store.code.tree_files(agent.commit_sha):
        from dgm.errors import UsageError

        raise UsageError(f"agent {agent.id} has no main.py in its code (commit {agent.commit_sha[:10]}), so it "
                         "cannot run under the agent contract")


def attempted_patch(store: ArchiveStore, agent: Agent) -> str | None:
    """The diff its self-modification produced, for a child without code of its own."""
    runs = store.list_task_runs(agent_id=agent.id, kind="self_modify")
    return runs[-1].patch if runs else None


def agent_details(store: ArchiveReader, agent_id: str) -> dict[str, Any]:
    agent = store.get_agent(agent_id)
    runs = store.list_task_runs(agent_id=agent.id)
    calls = store.list_llm_calls(agent_id=agent.id)
    stages: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.kind != "task":
            continue
        entry = stages.setdefault(run.stage, {"resolved": 0, "finished": 0, "unfinished": 0})
        if not run.finished:
            # Cut by a stop (budget, Ctrl-C, a crash): `dgm resume` redoes it. The
            # stage's figures are then only what finished, and say so.
            entry["unfinished"] += 1
            continue
        entry["finished"] += 1
        entry["resolved"] += run.status == "resolved"
    for entry in stages.values():
        entry["score"] = entry["resolved"] / entry["finished"] if entry["finished"] else None
        entry["interval"] = interval_fields(entry["resolved"], entry["finished"])
    # The runs behind its two scores: those of its own campaign (as `dgm.archive.reads.score_counts`).
    own_runs = [r for r in runs if r.kind == "task" and r.finished and r.campaign_id == agent.campaign_id]
    behind = {which: (sum(r.status == "resolved" for r in chosen), len(chosen))
              for which, chosen in (("score", [r for r in own_runs if r.stage != "heldout"]),
                                    ("heldout", [r for r in own_runs if r.stage == "heldout"]))}
    # What its own campaign spent on it, apart from what later evaluations and
    # replays of it (other campaigns) cost: `dgm ls` shows the first.
    own = [c for c in calls if c.campaign_id == agent.campaign_id]
    elsewhere: dict[str, dict[str, Any]] = {}
    kinds: dict[str, str] = {}
    for call in calls:
        if call.campaign_id == agent.campaign_id:
            continue
        if call.campaign_id not in kinds:
            kinds[call.campaign_id] = store.get_campaign(call.campaign_id).kind if call.campaign_id else "none"
        e = elsewhere.setdefault(kinds[call.campaign_id], {"calls": 0, "cost_usd": 0.0, "unpriced_calls": 0})
        e["calls"] += 1
        e["cost_usd"] += call.cost_usd
        e["unpriced_calls"] += not call.priced
    by_purpose: dict[str, dict[str, Any]] = {}
    for call in own:
        p = by_purpose.setdefault(call.purpose, {"calls": 0, "cost_usd": 0.0, "prompt_tokens": 0,
                                                 "completion_tokens": 0, "errors": 0, "unpriced_calls": 0})
        p["calls"] += 1
        p["cost_usd"] += call.cost_usd
        p["unpriced_calls"] += not call.priced
        p["prompt_tokens"] += call.prompt_tokens
        p["completion_tokens"] += call.completion_tokens
        p["errors"] += call.status != "ok"
    children = store.children_of(agent.id)
    own_code = has_own_code(agent)
    # A twin has the original's code: its record and score are the original's.
    original = store.get_agent(agent.twin_of) if agent.twin_of else None
    unpriced_by_run: dict[str, int] = {}
    for call in calls:
        if not call.priced and call.task_run_id:
            unpriced_by_run[call.task_run_id] = unpriced_by_run.get(call.task_run_id, 0) + 1
    summaries = [run_summary(r, unpriced_by_run.get(r.id, 0)) for r in runs]
    mark_cut_short(store, summaries)
    return {
        "id": agent.id, "campaign_id": agent.campaign_id, "parent_id": agent.parent_id,
        "generation": agent.generation, "commit": agent.commit_sha if own_code else None, "own_code": own_code,
        "attempted_patch": None if own_code else attempted_patch(store, agent), "status": agent.status,
        "origin": agent.origin, "rejection_reason": agent.rejection_reason, "proposal": agent.proposal,
        "diagnosis_target": agent.diagnosis_target, "score": agent.score, "heldout_score": agent.heldout_score,
        "score_interval": interval_fields(*behind["score"]) if agent.score is not None else interval_fields(None, 0),
        "heldout_interval": (interval_fields(*behind["heldout"]) if agent.heldout_score is not None
                             else interval_fields(None, 0)),
        "stage_reached": agent.stage_reached, "stages": stages, "meta": agent.meta,
        "twin_of": agent.twin_of, "twin_of_score": original.score if original is not None else None,
        "twin_of_status": original.status if original is not None else None, "twins": store.twins_of(agent.id),
        "created_at": _iso(agent.created_at), "children": [c.id for c in children],
        "task_runs": summaries,
        # Calls of no task run (diagnosing its parent's failure, proposals).
        "calls_outside_runs": [call_summary(c) for c in calls if c.task_run_id is None],
        "cost": {"total_usd": sum(c.cost_usd for c in calls), "calls": len(calls),
                 "campaign_usd": sum(c.cost_usd for c in own), "campaign_calls": len(own),
                 "unpriced_calls": sum(not c.priced for c in calls),
                 "campaign_unpriced_calls": sum(not c.priced for c in own),
                 "by_purpose": by_purpose, "elsewhere_by_kind": elsewhere,
                 "scripted": any(c.scripted for c in calls)},
        "llm_calls": [call_summary(c) for c in calls],
    }


def parent_diff(store: ArchiveReader, agent: Agent) -> tuple[str | None, str]:
    """(parent commit or None, unified diff parent -> agent; against the empty tree for a root).
    Empty for an agent without code of its own (`attempted_patch` has what it tried)."""
    parent_sha = store.get_agent(agent.parent_id).commit_sha if agent.parent_id else None
    if not has_own_code(agent):
        return parent_sha, ""
    return parent_sha, store.code.diff(parent_sha, agent.commit_sha)
