"""`dgm replay`: an archived agent on a task once more, in its own campaign of
kind 'replay', answered from a recording (offline, free) or by the model
(live), then compared with the run it replays (`dgm.lineage.replay`)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from dgm.errors import UsageError
from dgm.lineage.replay import ReplayReport, compare_requests, load_recording

if TYPE_CHECKING:
    import docker

    from dgm.archive.models import Agent, TaskRun
    from dgm.archive.store import ArchiveStore
    from dgm.bench.base import Benchmark
    from dgm.bench.task import Task
    from dgm.llm.roles import RoleModel


def replay_on_task(store: ArchiveStore, bench: Benchmark, agent: Agent, task: Task, *, mode: str,
                   source: TaskRun | None = None, model: str | None = None, time_limit_s: float = 900.0,
                   on_start: Callable[[], None] | None = None, role: RoleModel | None = None) -> ReplayReport:
    """`replay` on the Docker engine, once the task's image is there and
    sandboxes a crashed run left are gone; `on_start` just before it runs."""
    from dgm.sandbox.docker import docker_client, ensure_image, remove_orphans

    client = docker_client()
    ensure_image(client, bench.image(task))
    remove_orphans(client)
    if on_start is not None:
        on_start()
    return replay(store, client, bench, agent, task, mode=mode, source=source, model=model, time_limit_s=time_limit_s,
                  role=role)


def replay(store: ArchiveStore, docker_client: docker.DockerClient, bench: Benchmark, agent: Agent, task: Task, *,
           mode: str, source: TaskRun | None = None, model: str | None = None,
           time_limit_s: float = 900.0, role: RoleModel | None = None) -> ReplayReport:
    """Run `agent` on `task` once more, record it in a new 'replay' campaign, and compare.
    `role` (live only): how to reach the model (endpoint, key variable, price, limits, params)."""
    from dgm.bench.evaluate import EvalSettings
    from dgm.liveness import heartbeat
    from dgm.llm.client import Replayer
    from dgm.runs.stack import run_stack

    if mode not in ("recorded", "live"):
        raise ValueError(f"unknown replay mode {mode!r}")
    recording = load_recording(store, source) if mode == "recorded" else None
    if mode == "recorded":
        # The request hash includes the model name, so the replay must present the recorded one.
        model = source.model
    elif role is not None:
        model = role.name
    elif model is None:
        if source is None:
            raise UsageError("--live needs --model when the agent has no earlier run on this task")
        model = source.model
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    campaign = store.create_campaign(
        name=f"replay-{agent.id}-{task.instance_id}-{mode}-{stamp}-{os.getpid()}-{os.urandom(2).hex()}",
        kind="replay",
        config={"mode": mode, "agent": agent.id, "task": task.instance_id, "benchmark": bench.name,
                "model": model, "source_run": source.id if source else None, "time_limit_s": time_limit_s,
                **({"models": {"task": role.model_dump(mode="json")}} if role is not None and mode == "live" else {})},
    )
    replayer = Replayer(recording.steps) if recording else None
    try:
        with heartbeat(store, campaign.id), run_stack(store, docker_client, bench,
                                                      EvalSettings(model=model, time_limit_s=time_limit_s,
                                                                   role=role if mode == "live" else None)) as stack:
            run = stack.evaluator.run_task(agent, task, campaign_id=campaign.id, stage=f"{mode}-{campaign.id}",
                                           kind="replay", replay=replayer)
    except BaseException as exc:
        # A replay is not resumed: a run the failure cut short is closed, not left 'running'.
        store.close_campaign(campaign.id, "failed", unfinished_error=f"replay stopped: {type(exc).__name__}: {exc}")
        raise
    store.set_campaign_status(campaign.id, "completed", finished=True)
    report = ReplayReport(mode=mode, campaign_id=campaign.id, run=run, source=source)
    if source is not None:
        report.patch_identical = (run.patch or "") == (source.patch or "")
    if recording is not None:
        replayed_calls = [c for c in store.list_llm_calls(run.id) if c.status == "ok"]
        replayed_requests = [store.artifacts.get_json(c.artifact_id).get("request") or {} for c in replayed_calls]
        report.recorded_steps = len(recording.steps)
        report.replayed_steps = len(replayed_requests)
        report.exact_divergence = replayer.divergence
        report.divergence = compare_requests(recording.requests, replayed_requests)
        if replayer.divergence and replayer.divergence.get("reason") == "more requests than recorded":
            # The agent asked for more than was recorded: a divergence in any reading.
            report.divergence = report.divergence or replayer.divergence
        if run.status == "error" and run.error:
            report.notes.append(f"replay run error: {run.error}")
    return report
